"""curation.yaml validation: every wrong type is one line naming the key path and the value."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from curate.cli import main
from pipelines.config import CurationConfig, load_config, step_config
from pipelines.errors import ConfigError

# (case, curation.yaml bytes, words the one error line must contain)
BAD_CONFIGS = [
    ("schemes as a list", b"schemes: [a, b]\n", ["schemes must be a mapping", "['a', 'b']"]),
    ("classes null", b"schemes:\n  claim: {classes: null}\n", ["schemes.claim.classes", "null"]),
    ("classes a string", b"schemes:\n  claim: {classes: ABC}\n",
     ["schemes.claim.classes", "'ABC'"]),
    ("classes empty", b"schemes:\n  claim: {classes: []}\n", ["schemes.claim.classes", "[]"]),
    ("classes nested", b"schemes:\n  claim: {classes: [[A], B]}\n", ["schemes.claim.classes"]),
    ("classes yes/no", b"schemes:\n  claim: {classes: [yes, no]}\n",
     ["schemes.claim.classes", "quote"]),
    ("classes repeated", b"schemes:\n  claim: {classes: [A, A]}\n",
     ["schemes.claim.classes", "distinct"]),
    ("lf_modules a string", b"schemes:\n  claim: {classes: [A, B], lf_modules: abc}\n",
     ["schemes.claim.lf_modules", "'abc'"]),
    ("scheme not a mapping", b"schemes:\n  claim: 3\n", ["schemes.claim", "3"]),
    ("scheme without classes", b"schemes:\n  claim: {lf_modules: [m]}\n",
     ["schemes.claim", "classes"]),
    ("dedup a list", b"dedup: [1, 2]\n", ["dedup must be a mapping", "[1, 2]"]),
    ("export a string", b"export: yes please\n", ["export must be a mapping", "'yes please'"]),
    ("fields a list", b"fields: [text]\n", ["fields must be a mapping", "['text']"]),
    ("fields unknown key", b"fields: {txt: body}\n", ["fields", "txt"]),
    ("field not a string", b"fields: {text: 3}\n", ["fields.text", "3"]),
    ("files a string", b"files: data.csv\n", ["files", "'data.csv'"]),
    ("schema a list", b"schema: [text]\n", ["schema", "['text']"]),
    ("gold_prefix a number", b"gold_prefix: 3\n", ["gold_prefix", "3"]),
    ("top level a list", b"- a\n- b\n", ["top level", "['a', 'b']"]),
    ("unknown key", b"shemes: {}\n", ["unknown key", "shemes"]),
    ("latin-1 bytes", b"schemes:\n  claim: {classes: [caf\xe9, B]}\n",
     ["not UTF-8", "0xe9", "offset 32", "line 2"]),
    ("yaml syntax error", b"schemes:\n  claim: {classes: [A, B}\n",
     ["curation.yaml:2:", "invalid YAML"]),
    ("yaml tab indent", b"schemes:\n\tclaim: {}\n", ["curation.yaml:2:", "invalid YAML"]),
]


@pytest.fixture(scope="module")
def ws_with_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cfg")
    data = root / "notes.csv"
    data.write_text("text\nPipe burst in kitchen.\nCar hit a fence.\n", encoding="utf-8")
    assert main(["ingest", str(data), "-w", str(root / "ws")]) == 0
    return root / "ws"


def _snapshot(root):
    return {p.relative_to(root): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("case,text,words", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_is_one_line_and_changes_nothing(capsys, ws_with_data, case, text, words):
    capsys.readouterr()
    (ws_with_data / "curation.yaml").write_bytes(text)
    before = _snapshot(ws_with_data)
    code = main(["records", "-w", str(ws_with_data)])
    out, err = capsys.readouterr()
    assert code == 2, (case, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "curation.yaml" in lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert _snapshot(ws_with_data) == before


def test_folder_named_curation_yaml_is_refused(tmp_path):
    (tmp_path / "curation.yaml").mkdir()
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path / "curation.yaml")
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)


def test_good_config_still_loads(tmp_path):
    (tmp_path / "curation.yaml").write_text(
        "schema: text\nfields: {text: body}\nfiles: [a.csv]\nschemes:\n  claim:\n"
        "    classes: [A, 1, 'yes']\n    lf_modules: [labeling_functions.claims]\n"
        "dedup: {threshold: 0.9}\nexport:\n", encoding="utf-8")
    cfg = load_config(tmp_path)
    assert cfg.scheme("claim").classes == ["A", "1", "yes"]
    assert cfg.scheme("claim").lf_modules == ["labeling_functions.claims"]
    assert cfg.section("dedup") == {"threshold": 0.9} and cfg.section("export") == {}
    assert CurationConfig.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()


@dataclass
class _Step:
    threshold: float = 0.5
    steps: int = 3
    verify: bool = True
    model: str | None = None
    labels: list[str] | None = None


@pytest.mark.parametrize("key,value,words", [
    ("threshold", "abc", "a number"), ("steps", 2.5, "an integer"), ("steps", True, "an integer"),
    ("verify", "no", "true or false"), ("model", 3, "a string or null"),
    ("labels", "A", "a list of a string or null"),
])
def test_step_section_types_are_checked(key, value, words):
    with pytest.raises(ConfigError) as info:
        step_config(_Step, "dedup", {key: value})
    msg = str(info.value)
    assert f"dedup.{key}" in msg and words in msg and repr(value) in msg and "\n" not in msg


def test_step_section_good_values_pass():
    cfg = step_config(_Step, "dedup", {"threshold": 1, "steps": 4, "labels": ["A"]}, verify=False)
    assert (cfg.threshold, cfg.steps, cfg.verify, cfg.labels) == (1, 4, False, ["A"])
