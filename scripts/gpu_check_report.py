"""The two Python halves of scripts/gpu_check.sh.

`env --out FILE`: versions of Python, torch (CUDA, cuDNN, the devices), Lightning, Hydra and this
project, as JSON. `report --outdir DIR`: every step's result and numbers (logs/, train/summary.json,
bench/bench.json, the pytest JUnit file) gathered into DIR/gpu_check.json and DIR/gpu_check.md; exit
code 0 = every check passed, 1 = a check failed, 2 = no CUDA (nothing could be checked).

`report` uses the standard library only and reads each input on its own: a missing or broken one is
recorded as such, so the file is written whatever went wrong before.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import platform
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

TIMEOUT_RCS = {"124", "137"}  # timeout(1): the time box ran out (SIGTERM, then SIGKILL)


def env_info() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "executable": sys.executable}
    import torch  # here, not at the top: `report` must work without torch

    cuda = torch.cuda.is_available()
    info["torch"] = {
        "version": torch.__version__, "file": torch.__file__, "cuda_build": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None, "cuda_available": cuda,
        "devices": [{"name": torch.cuda.get_device_name(i), "capability": list(torch.cuda.get_device_capability(i)),
                     "memory_gib": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1)}
                    for i in range(torch.cuda.device_count())] if cuda else [],
    }
    for name in ("lightning", "hydra", "omegaconf", "tensorboard", "matplotlib", "pytest", "rnn_gradients"):
        try:
            module = __import__(name)
            info[name] = {"version": getattr(module, "__version__", None), "file": module.__file__}
        except Exception as error:  # noqa: BLE001 - recorded, the report says what is missing
            info[name] = {"error": f"{type(error).__name__}: {error}"}
    return info


# ------------------------------------------------------------------------------------------ readers


def read_steps(logs: Path) -> dict[str, dict[str, Any]]:
    steps: dict[str, dict[str, Any]] = {}
    for line in (logs / "steps.tsv").read_text().splitlines():
        name, rc, seconds, limit, note = (line.split("\t") + [""] * 5)[:5]
        steps[name] = {"rc": int(rc) if rc.lstrip("-").isdigit() else None, "seconds": int(seconds or 0),
                       "time_box_s": int(limit or 0), "note": note, "timed_out": rc in TIMEOUT_RCS}
    return steps


def read_pytest(path: Path) -> dict[str, Any]:
    root = ET.parse(path).getroot()
    tests, counts = [], {"passed": 0, "failed": 0, "skipped": 0}
    for case in root.iter("testcase"):
        outcome, message = "passed", ""
        for tag, name in (("failure", "failed"), ("error", "failed"), ("skipped", "skipped")):
            node = case.find(tag)
            if node is not None:
                outcome, message = name, (node.get("message") or "")[:500]
                break
        counts[outcome] += 1
        tests.append({"name": f"{case.get('classname')}::{case.get('name')}", "outcome": outcome,
                      "time_s": float(case.get("time") or 0), "message": message})
    return {**counts, "total": len(tests), "tests": tests}


def read_smi(log: Path) -> dict[str, Any]:
    text = log.read_text()
    head, _, query = text.partition("--- query")
    rows = list(csv.DictReader(io.StringIO(query.strip()), skipinitialspace=True)) if query.strip() else []
    return {"gpus": rows, "table": head.strip()}


def read_train(outdir: Path, logs: Path) -> dict[str, Any]:
    trainer, steps = (logs / "train_settings").read_text().split()
    out: dict[str, Any] = {"trainer": trainer, "max_steps": int(steps)}
    summary = json.loads((outdir / "train" / "summary.json").read_text())
    keep = ("status", "steps", "wall_time_s", "val_normalized_loss", "val_loss", "train_loss", "val_accuracy",
            "diverged_at_step", "divergence_reason", "model", "task", "clipping")
    out.update({k: summary.get(k) for k in keep})
    if summary.get("steps") and summary.get("wall_time_s"):
        # the whole fit: steps, the default callbacks, 8 validations, checkpoints (not start-up)
        out["ms_per_step"] = round(1e3 * summary["wall_time_s"] / summary["steps"], 3)
    return out


def read_step_times(run_dir: Path) -> dict[str, Any]:
    """Per-step times from the TensorBoard event wall times of grad_norm/total_preclip, written at the
    end of every step (after its one host sync): the median step (steady state) and the mean over the
    steps after the first 100 (periodic callbacks and validations included). Needs tensorboard, which
    the GPU machine has; without it this part of the report says so."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    events = {e.step: e.wall_time for e in acc.Scalars("grad_norm/total_preclip")}  # a resumed step: the last
    steps = sorted(events)
    gaps = [1e3 * (events[b] - events[a]) / (b - a) for a, b in zip(steps, steps[1:])]
    late = [s for s in steps if s >= 100]
    out: dict[str, Any] = {"steps_seen": len(steps)}
    if gaps:
        out["median_ms_per_step"] = round(sorted(gaps)[len(gaps) // 2], 3)
    if len(late) >= 2:
        out["mean_ms_per_step_after_100"] = round(1e3 * (events[late[-1]] - events[late[0]]) / (late[-1] - late[0]), 3)
    return out


def read_bench(path: Path) -> dict[str, Any]:
    bench = json.loads(path.read_text())
    rows = []
    for r in bench.get("rows", []):
        row = {"id": r["id"], "status": r["status"], "title": r.get("title"), "reason": r.get("reason")}
        if "ratio" in r:
            row.update(ratio=round(r["ratio"], 4), a=r["a"]["label"], a_median_ms=round(r["a"]["median"], 4),
                       b=r["b"]["label"], b_median_ms=round(r["b"]["median"], 4), n=r["a"]["n"])
        if r.get("target"):
            row["target"] = f"{r['target']['op']} {r['target']['value']}"
        rows.append(row)
    return {"duration_s": round(bench.get("duration_s", 0), 1), "rows": rows}


def attempt(results: dict[str, Any], key: str, reader: Any, *args: Any) -> None:
    try:
        results[key] = reader(*args)
    except Exception as error:  # noqa: BLE001 - a missing or broken input is a finding, not a crash
        results[key] = {"error": f"{type(error).__name__}: {error}"}


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ------------------------------------------------------------------------------------------ judging


def judge(r: dict[str, Any], cuda: bool) -> None:
    """Each step's status: pass / fail / timeout / skipped (no CUDA: nothing to check) / info."""
    steps, env = r["steps"], r.get("env", {})
    base = r.get("base_torch")

    def status(name: str, ok: bool, skipped: bool = False) -> None:
        s = steps.setdefault(name, {"rc": None, "note": "no record"})
        s["status"] = ("timeout" if s.get("timed_out") else "skipped" if skipped
                       else "pass" if ok and s.get("rc") == 0 else "fail")

    status("setup", True)
    torch_now = env.get("torch", {}).get("version")
    status("env", torch_now is not None and (base is None or base == torch_now))
    if base and torch_now and base != torch_now:
        steps["env"]["note"] = f"torch changed: the machine's {base}, the venv's {torch_now}"
    if "nvidia_smi" in steps:
        steps["nvidia_smi"]["status"] = "info"  # reported, not judged: CUDA itself is what the env step checks
    py = r.get("pytest", {})
    status("pytest", not py.get("failed") and py.get("total", 0) > 0 and (not cuda or py.get("skipped") == 0),
           skipped=not cuda and py.get("skipped") == py.get("total") and steps.get("pytest", {}).get("rc") == 0)
    if cuda and py.get("skipped"):
        steps["pytest"]["note"] = f"{py['skipped']} test(s) skipped on a CUDA machine"
    tr = r.get("train", {})
    ran_train = steps.get("train", {}).get("rc") is not None
    status("train", tr.get("status") == "completed" and tr.get("steps") == tr.get("max_steps"),
           skipped=not cuda and not ran_train)
    rows = r.get("bench", {}).get("rows", [])
    status("bench", bool(rows) and all(x["status"] != "error" for x in rows),
           skipped=not cuda and bool(rows) and all(x["status"] == "skipped" for x in rows))
    for name, s in steps.items():
        if s.get("status") in ("fail", "timeout"):
            s["log_tail"] = tail(Path(r["outdir"]) / "logs" / f"{name}.log")


def render_md(r: dict[str, Any]) -> str:
    env, torch_ = r.get("env", {}), r.get("env", {}).get("torch", {})
    gpus = ", ".join(f"{g['name']} (sm {g['capability'][0]}{g['capability'][1]}, {g['memory_gib']} GiB)"
                     for g in torch_.get("devices", [])) or "none"
    smi = (r.get("nvidia_smi", {}).get("gpus") or [{}])[0]
    lines = [
        f"# trainer=gpu check: **{r['status']}**", "",
        *(["No CUDA here: the GPU tests skipped and nothing GPU-specific was measured.", ""] if not r["cuda"] else []),
        f"{r['date']} · {r['elapsed_s']} s of a {r['budget_s']} s budget · GPU: {gpus} · driver "
        f"{smi.get('driver_version', '?')} · torch {torch_.get('version', '?')} (CUDA {torch_.get('cuda_build')}, "
        f"cuDNN {torch_.get('cudnn')}) · Lightning {env.get('lightning', {}).get('version', '?')} · Python "
        f"{env.get('python', '?')} · project installed: {r.get('install_mode', '?')}", "",
        "| step | status | rc | seconds (time box) | note |", "|---|---|---|---|---|",
    ]
    for name, s in r["steps"].items():
        lines.append(f"| {name} | {s.get('status')} | {s.get('rc')} | {s.get('seconds', 0)} ({s.get('time_box_s', 0)}) "
                     f"| {s.get('note', '')} |")
    py = r.get("pytest", {})
    lines += ["", f"**pytest -m gpu**: {py.get('passed', 0)} passed, {py.get('failed', 0)} failed, "
                  f"{py.get('skipped', 0)} skipped" + (f" ({py['error']})" if "error" in py else "")]
    lines += [f"- {t['outcome']}: `{t['name']}` {t['message'][:200]}" for t in py.get("tests", []) if t["outcome"] == "failed"]
    tr = r.get("train", {})
    if "error" in tr:
        tr = {**tr, "status": r["steps"].get("train", {}).get("note") or tr["error"]}
    lines += ["", f"**training run** (trainer={tr.get('trainer')}, LSTM, adding T=100, default callbacks): "
                  f"{tr.get('status')} after {tr.get('steps')} of {tr.get('max_steps')} steps in "
                  f"{tr.get('wall_time_s')} s = {tr.get('ms_per_step')} ms/step (validations included); "
                  f"val normalized loss {tr.get('val_normalized_loss')}; step times from TensorBoard: "
                  f"{tr.get('step_times')}"]
    lines += ["", "| bench row | target | ratio | A (ms) | B (ms) | status |", "|---|---|---|---|---|---|"]
    for x in r.get("bench", {}).get("rows", []):
        lines.append(f"| {x['id']} | {x.get('target', '-')} | {x.get('ratio', '-')} | {x.get('a_median_ms', '-')} "
                     f"| {x.get('b_median_ms', '-')} | {x['status']}{': ' + x['reason'] if x.get('reason') else ''} |")
    return "\n".join(lines) + "\n"


def report(outdir: Path, budget: int, elapsed: int) -> int:
    logs = outdir / "logs"
    r: dict[str, Any] = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                         "host": platform.node(), "outdir": str(outdir), "budget_s": budget, "elapsed_s": elapsed}
    attempt(r, "steps", read_steps, logs)
    if "error" in r["steps"]:
        r["steps"] = {"report": {"rc": None, "note": r["steps"]["error"]}}
    attempt(r, "env", lambda: json.loads((logs / "env.json").read_text()))
    for key, name in (("base_torch", "base_torch.txt"), ("install_mode", "install_mode")):
        path = logs / name
        r[key] = path.read_text().strip().splitlines()[-1] if path.is_file() and path.read_text().strip() else None
    attempt(r, "nvidia_smi", read_smi, logs / "nvidia_smi.log")
    attempt(r, "pytest", read_pytest, logs / "pytest.xml")
    attempt(r, "train", read_train, outdir, logs)
    if "error" not in r["train"]:
        attempt(r["train"], "step_times", read_step_times, outdir / "train")
    attempt(r, "bench", read_bench, outdir / "bench" / "bench.json")
    cuda = bool(r["env"].get("torch", {}).get("cuda_available"))
    r["cuda"] = cuda
    judge(r, cuda)
    failed = [n for n, s in r["steps"].items() if s.get("status") in ("fail", "timeout")]
    r["failed_steps"] = failed
    r["status"] = "fail" if failed else "no_cuda" if not cuda else "pass"
    (outdir / "gpu_check.json").write_text(json.dumps(r, indent=2) + "\n")
    try:
        (outdir / "gpu_check.md").write_text(render_md(r))
    except Exception as error:  # noqa: BLE001 - the JSON above is the record; the summary is a convenience
        (outdir / "gpu_check.md").write_text(f"# trainer=gpu check: {r['status']}\n\n(summary failed: {error!r}; see gpu_check.json)\n")
    print(f"{r['status']}: {outdir / 'gpu_check.json'}" + (f" (failed: {', '.join(failed)})" if failed else ""))
    return 1 if failed else 2 if not cuda else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    env = sub.add_parser("env")
    env.add_argument("--out", type=Path, required=True)
    rep = sub.add_parser("report")
    rep.add_argument("--outdir", type=Path, required=True)
    rep.add_argument("--budget", type=int, default=0)
    rep.add_argument("--elapsed", type=int, default=0)
    args = parser.parse_args()
    if args.command == "env":
        info = env_info()
        args.out.write_text(json.dumps(info, indent=2) + "\n")
        print(json.dumps({k: v for k, v in info.items() if k in ("python", "torch")}))
        return 0
    return report(args.outdir, args.budget, args.elapsed)


if __name__ == "__main__":
    sys.exit(main())
