"""`python -m trainer RUN_DIR --export VERSION [--resume]`: the process of a detached run.

`trainer.runs.start_detached` writes `RUN_DIR/config.yaml` and starts this; it reads that file
back and calls `trainer.train` on the workspace that holds `RUN_DIR` (`W/runs/<id>`). It is
not a user command (that is `curate train --detach`): it takes no training options, only the
run folder it was prepared.

A user's mistake (an export in the wrong format for the head, say) prints one line, exits 2
and, when the run had not started yet, is written as the run's `end` event, so the studio and
`curate train status` show the message rather than "failed to start".
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pipelines.errors import StudioError
from pipelines.store import Workspace
from trainer.config import TrainConfig
from trainer.runs import EventWriter, RunDir, read_events
from trainer.train import train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path, help="W/runs/<id>, holding config.yaml")
    parser.add_argument("--export", required=True, help="export version to train on")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    args = parser.parse_args(argv)

    rd = RunDir(args.run_dir.resolve())
    t0 = time.time()
    try:
        ws = Workspace.open(rd.path.parent.parent)
        cfg = TrainConfig.from_yaml(rd.config_yaml)
        train(ws, args.export, cfg, run_id=rd.id, resume=args.resume, echo=print)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        ended = any(e["event"] == "end" and e.get("time", 0) >= t0 for e in read_events(rd.events))
        if rd.path.is_dir() and not ended:
            EventWriter(rd.events).write("end", status="failed", error=str(exc), seconds=0.0)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
