"""python -m wgan_app.evidence: export finished runs into the evidence format, print the
final-checkpoint table of an evidence set, or regenerate the tables inside docs/*.md."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from ..errors import UserError
from ..metrics import STACKED_NUM
from ..paths import EVIDENCE_DIR
from . import SETS, load_evidence
from .export import FINAL_NUM, export_run
from .report import final_markdown, update_docs


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wgan_app.evidence",
                                description="Copy finished runs into the shipped evidence format (Compare tab).")
    p.add_argument("runs", nargs="*", help="run directories trained with --eval-every (and --grid-minutes)")
    p.add_argument("--table", action="store_true",
                   help="print the final-checkpoint table of the evidence in --dest (docs, model cards) instead")
    p.add_argument("--variant", help="--table: only this variant's methods")
    p.add_argument("--dest", default=str(EVIDENCE_DIR / "recipes"),
                   help="evidence folder (default checkpoints/evidence/recipes; also: .../architectures)")
    p.add_argument("--num", type=int, default=None, help=f"samples to judge each final checkpoint on (default "
                   f"{FINAL_NUM:,}; Stacked MNIST {STACKED_NUM:,}, the papers' count)")
    p.add_argument("--overwrite", action="store_true", help="replace an evidence folder of the same name")
    p.add_argument("--update-docs", nargs="+", metavar="MD", help="regenerate the <!-- evidence: ... --> blocks of "
                   "these Markdown files from the shipped evidence (the folder above --dest's)")
    p.add_argument("--real-floor", action="store_true", help="score real Stacked-MNIST images (26,000, three seeds) "
                   "with the classifier and write real.json into --dest: the floor beside the runs")
    p.add_argument("--data-dir", default="data", help="--real-floor: the folder holding MNIST/raw")
    p.add_argument("--check", action="store_true",
                   help="with --update-docs: change nothing, exit 1 if a block is stale")
    args = p.parse_args(argv)
    if args.update_docs:
        root = Path(args.dest).parent if Path(args.dest).name in SETS else Path(args.dest)
        stale = [md for md in args.update_docs if update_docs(Path(md), root, check=args.check)]
        for md in stale:
            print(f"{md}: {'stale' if args.check else 'updated'}", file=sys.stderr)
        return 1 if stale and args.check else 0
    if args.real_floor:
        from .stacked import write_real_floor

        try:
            print(write_real_floor(args.dest, args.data_dir))
        except UserError as e:
            print(f"wgan_app.evidence: error: {e}", file=sys.stderr)
            return 2
        return 0
    if args.table:
        runs = [r for r in load_evidence(args.dest) if r.final and args.variant in (None, r.variant)]
        if not runs:
            print(f"wgan_app.evidence: error: no exported runs{f' of {args.variant}' if args.variant else ''} "
                  f"under {args.dest}; export some first (see --help)", file=sys.stderr)
            return 2
        print(final_markdown(runs))
        return 0
    if not args.runs:
        p.error("give run directories to export, or --table")
    try:
        for run in args.runs:
            print(export_run(run, args.dest, num=args.num, overwrite=args.overwrite))
    except UserError as e:
        print(f"wgan_app.evidence: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
