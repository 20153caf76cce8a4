"""The application layer: the `curate` CLI (`curate.cli`) and the curation-ROI study (`curate.roi`).

Arrows run one way: `pipelines` (core steps) <- `trainer` <- `curate` and `studio`. Nothing in
`pipelines` or `trainer` imports this package.
"""
