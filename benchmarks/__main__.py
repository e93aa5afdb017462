"""Run one group of benchmarks and print its tables: ``python -m benchmarks GROUP``.

Run from the repository root. Each step is one script run as a child process, from the
root, exactly as RESULTS.md quotes it (``python benchmarks/GROUP/SCRIPT.py ...``); its
tables and provenance lines (command, date, machine, git revision, load average) go to
stdout as the script prints them. By default a group runs the steps behind the tables of
RESULTS.md, in the page's order; ``--all`` adds its other scripts (validation,
diagnostics, older studies), ``--only`` picks steps by name, ``--list`` prints the commands
without running anything.

``--cached-only`` computes nothing: it runs only the steps that read cached evaluations
(``.bench/evals``, see ``benchmarks/common/paper_runs.py``), with
``BIPART_BENCH_CACHED_ONLY=1``, so a missing evaluation, index or model stops its step
with a line naming it instead of computing it. ``python -m benchmarks quality
--cached-only`` reprints RESULTS.md's quality table from the cache in seconds.

    python -m benchmarks quality|speed|paper|training [--list] [--all] [--only NAME,...]
        [--cached-only]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Step:
    """One script run: ``python benchmarks/<script> <args>`` from the repository root."""

    name: str
    script: str  # relative to benchmarks/
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    page: bool = True  # its tables are on RESULTS.md (the default run)
    cached: bool = False  # reads cached evaluations only when they exist (--cached-only)

    def command(self) -> list[str]:
        return [sys.executable, str(ROOT / "benchmarks" / self.script), *self.args]

    def shown(self) -> str:
        env = " ".join(f"{k}={v}" for k, v in self.env.items())
        line = " ".join(["python", f"benchmarks/{self.script}", *self.args])
        return f"{env} {line}" if env else line


ARENA = {"MALLOC_ARENA_MAX": "1"}  # glibc fragmentation took training to 15-17 GB without it

GROUPS: dict[str, tuple[str, list[Step]]] = {
    "quality": (
        "How well are parts labeled, per dev set, against the nearest-neighbour floor?",
        [
            Step(
                "few_shot",
                "quality/few_shot.py",
                ("--sizes", "8", "--settings", "default"),
                cached=True,
            ),
            Step("nn_transfer", "quality/nn_transfer.py"),
            Step(
                "mesh_test",
                "quality/mesh_few_shot.py",
                ("--datasets", "pm", "--split", "test", "--agreements", "1,0.6"),
            ),
            Step(
                "mesh_train",
                "quality/mesh_few_shot.py",
                ("--datasets", "pm", "--split", "train", "--agreements", "1,0.6"),
            ),
            Step(
                "adapt_options",
                "quality/adapt_options.py",
                ("--variants", "default,default+no-position"),
                page=False,
            ),
            Step(
                "subset_shift",
                "quality/subset_shift.py",
                ("--variants", "default,default+as-given"),
                page=False,
            ),
            Step("pose", "quality/pose.py", page=False),
            Step("pose_turns", "quality/pose_turns.py", page=False),
            Step("face_smoothing", "quality/face_smoothing.py", page=False),
            Step(
                "support_fit",
                "quality/support_fit.py",
                env={"BIPART_FEATURE_CACHE_MB": "30000"},
                page=False,
            ),
        ],
    ),
    "speed": (
        "How long does bipart take, and in how much memory?",
        [
            Step(
                "example",
                "speed/example_speed.py",
                ("--warm", "5", "--new-assets", "2", "--rounds", "3"),
            ),
            Step(
                "segment_100k",
                "speed/speed_memory.py",
                ("--sections", "segment", "--no-vlm", "--device", "cpu"),
            ),
            Step(
                "retrieval",
                "speed/speed_memory.py",
                ("--sections", "retrieval", "--entries", "100000", "--device", "cpu"),
            ),
            Step("bank_open", "speed/bank_open.py", ("--runs", "3")),
            Step("index_again", "speed/index_again.py", ("--runs", "5")),
            Step(
                "adapt",
                "speed/adapt_speed.py",
                ("--sizes", "8", "--steps", "10", "--repeats", "3", "--device", "cpu"),
            ),
            Step("batch", "speed/batch_speed.py", ("--assets", "4"), page=False),
            Step(
                "descriptors",
                "speed/descriptor_speed.py",
                ("--shapes", "2", "--repeats", "3"),
                page=False,
            ),
            Step("labeling", "speed/labeling_speed.py", page=False),
            Step("model", "speed/model_speed.py", page=False),
            Step("pose_shortlist", "speed/pose_shortlist.py", page=False),
            Step(
                "segment_vlm_index",
                "speed/speed_memory.py",
                ("--sections", "segment,index", "--device", "cpu"),
                page=False,
            ),
        ],
    ),
    "paper": (
        "Do the paper's tables and its claims about the teacher hold here?",
        [
            Step("table1", "paper/table1_quality.py", cached=True),
            Step("table3", "paper/table3_ablation.py", cached=True),
            Step("table4", "paper/table4_selection.py", cached=True),
            Step("table5", "paper/table5_support_steps.py", cached=True),
            Step(
                "few_shot_j",
                "quality/few_shot.py",
                ("--weights", ".bench/runs/j-bilevel/model", "--settings", "paper"),
                page=False,
                cached=True,
            ),
            Step("vlm_defaults", "paper/vlm_defaults.py", ("--device", "cpu"), cached=True),
            Step("noise_sweep", "paper/noise_sweep.py", ("--settings", "default")),
            Step(
                "noise_sweep_paper",
                "paper/noise_sweep.py",
                (
                    "--settings",
                    "paper",
                    "--weights",
                    ".bench/runs/j-bilevel/model",
                    "--weights",
                    "random",
                ),
                page=False,
            ),
            Step(
                "teacher",
                "paper/teacher.py",
                ("--per-category", "4", "--n-dense", "25000", "--image-size", "256"),
                page=False,
            ),
            Step("g_setting", "paper/g_setting.py", ("--epochs", "3"), page=False),
        ],
    ),
    "training": (
        "What does training buy, and how fast does it run?",
        [
            Step(
                "leave_one_out",
                "training/leave_one_out.py",
                ("--epochs", "2", "--datasets", "pm,human,psb", "--device", "cpu"),
                env=ARENA,
                cached=True,
            ),
            Step(
                "train_speed",
                "training/train_speed.py",
                ("--batches", "1", "--shapes", "16", "--batch-size", "8", "--orders", "second"),
                env=ARENA,
            ),
            Step(
                "pretrain_speed",
                "training/pretrain_speed.py",
                ("--device", "cpu", "--batch-sizes", "4,8", "--steps", "5"),
            ),
        ],
    ),
}


def chosen_steps(group: str, args: argparse.Namespace) -> list[Step]:
    steps = GROUPS[group][1]
    if args.only:
        names = args.only.split(",")
        unknown = sorted(set(names) - {s.name for s in steps})
        if unknown:
            known = ", ".join(s.name for s in steps)
            raise SystemExit(f"no step {', '.join(unknown)} in {group} (its steps: {known})")
        return [s for s in steps if s.name in names]
    return [s for s in steps if s.page or args.all]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__.split("\n\n")[0],
        epilog="groups:\n" + "\n".join(f"  {g:<9} {q}" for g, (q, _) in GROUPS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("group", choices=list(GROUPS))
    parser.add_argument("--list", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--all", action="store_true", help="also the steps not on RESULTS.md")
    parser.add_argument("--only", help="comma-separated step names (see --list)")
    parser.add_argument(
        "--cached-only",
        action="store_true",
        help="compute nothing: run only the steps that read cached evaluations, and stop "
        "any of them that would compute one",
    )
    args = parser.parse_args(argv)
    question, _ = GROUPS[args.group]
    steps = chosen_steps(args.group, args)
    if args.list:
        print(f"# {args.group}: {question}")
        for step in steps:
            flags = [f for f, on in (("on RESULTS.md", step.page), ("cached", step.cached)) if on]
            print(f"{step.name:<18} {step.shown()}" + (f"   ({', '.join(flags)})" if flags else ""))
        return 0
    failed = []
    for step in steps:
        if args.cached_only and not step.cached:
            print(f"== {step.name}: skipped (--cached-only: it computes)\n", flush=True)
            continue
        env = {**os.environ, **step.env}
        if args.cached_only:
            env["BIPART_BENCH_CACHED_ONLY"] = "1"
        print(f"== {step.name}: {step.shown()}", flush=True)
        started = time.perf_counter()
        done = subprocess.run(step.command(), cwd=ROOT, env=env)
        took = time.perf_counter() - started
        print(f"== {step.name}: exit {done.returncode}, {took:.0f} s\n", flush=True)
        if done.returncode != 0:
            failed.append(step.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
