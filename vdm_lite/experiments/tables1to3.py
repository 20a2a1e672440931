"""Running the protocols of Tables 1-3: sample, score and write the table, one call per table.

    vdm-lite reproduce table1 CKPT --data=UCF-101 --c3d=c3d_ucf101.safetensors        # UCF101 IS / FID
    vdm-lite reproduce table2 CKPT --data=softmotion30_44k --i3d=i3d_torchscript.pt   # BAIR FVD
    vdm-lite reproduce table3 CKPT --data=kinetics600/videos --split-file=test.csv --i3d=...   # Kinetics-600
    vdm-lite reproduce table2 CKPT --data=... --smoke     # the same code at tiny counts, seconds on a CPU

What each table generates and how it is scored: :mod:`vdm_lite.experiments.protocols`.

**Resuming**: samples are written in shards, ``OUT/samples/samples_000.npz``, ... (uint8
``(n, T, H, W, 3)`` and the indices they belong to), each atomically; a run that stopped (or
``max_shards``) continues with the first missing shard, and a finished one only recomputes
the scores. Shard ``k`` is drawn from seeds derived from ``(seed, k)``, so a resumed run gives
the same samples as an uninterrupted one (for the same batch size). ``OUT/protocol.json``
holds the settings: a second call with other settings in the same folder is an error.
Real features are cached in ``OUT/real_features.pt``, keyed by the network's name and the data.

**Outputs**: ``OUT/tableN.json`` and ``tableN.md`` (made from the JSON by :func:`markdown`:
:mod:`vdm_lite.experiments.report`), with the paper's numbers beside this run's. Without a
feature network (no ``--c3d``/``--i3d``) the samples are still made and the table says what is
missing. ``smoke=True`` shrinks every count (:data:`~vdm_lite.experiments.protocols.SMOKE`)
and, unless a network is given, scores with
:class:`~vdm_lite.experiments.protocols.StandInNet`, a fixed random network: its numbers only
show that the pipeline runs.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..evaluate import environment
from .protocols import PROTOCOLS, SMOKE, TABLES, Protocol, _Cycled, _dataset, _loader, _Scorer, _scorer
from .report import table_markdown, write_result

__all__ = ["reproduce_benchmark", "load_shard", "markdown", "cli_reproduce"]


# -- samples as uint8 --------------------------------------------------------------------


def _to_uint8(videos: torch.Tensor) -> np.ndarray:
    """``(B, 3, T, H, W)`` in [-1, 1] -> ``uint8 (B, T, H, W, 3)``."""
    return ((videos.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1).numpy()


def _from_uint8(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0


# -- shards ------------------------------------------------------------------------------


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) & (2**63 - 1) for p in parts]).generate_state(1, dtype=np.uint64)[0] >> 1)


def _atomic_savez(path: Path, **arrays) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_shard(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A sample shard: ``videos`` uint8 ``(n, T, H, W, 3)``, ``index`` (positions in the run) and,
    for Table 2, ``video_index`` and ``sample_index``."""
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _shard_array(path: Path, name: str) -> np.ndarray:
    with np.load(path) as z:
        return z[name]


def _shard_paths(out: Path, total: int, shard: int) -> list[tuple[Path, int, int]]:
    n = math.ceil(total / shard)
    return [(out / "samples" / f"samples_{k:03d}.npz", k * shard, min(total, (k + 1) * shard)) for k in range(n)]


def _check_settings(out: Path, settings: dict) -> None:
    path = out / "protocol.json"
    if path.exists():
        have = json.loads(path.read_text())
        diff = [f"{k}: {have.get(k)!r} there, {v!r} now" for k, v in settings.items() if have.get(k) != v]
        if diff:
            raise ValueError(f"{out} holds samples made with other settings ({'; '.join(diff)}); give another output "
                             "folder (--out) or remove that one")  # fmt: skip
    else:
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings, indent=2) + "\n")


# -- the driver --------------------------------------------------------------------------


def reproduce_benchmark(
    table: str,
    checkpoint: str | os.PathLike,
    data: str | os.PathLike | None,
    *,
    out_dir: str | os.PathLike | None = None,
    smoke: bool = False,
    num: int | None = None,
    samples_per_video: int | None = None,
    num_real: int | None = None,
    sampler: str | None = None,
    steps: int | None = None,
    recon_weight: float | None = None,
    seed: int = 0,
    shard_size: int | None = None,
    batch_size: int | None = None,
    c3d: str | os.PathLike | None = None,
    i3d: str | os.PathLike | None = None,
    feature_net: Any = None,
    resize: str = "torch",
    split_file: str | os.PathLike | None = None,
    clip: str | None = None,
    real_split: str = "train",
    weights: str = "ema",
    device: str | torch.device | None = None,
    progress: bool | None = None,
    max_shards: int | None = None,
    workers: int = 0,
    command: str | None = None,
) -> dict:
    """Run the protocol of ``table`` (``"table1"``, ``"table2"`` or ``"table3"``) on a model.

    Args:
        checkpoint: the model (run directory, ``checkpoint.pt`` or ``.safetensors``); it must be
            unconditional. Its resolution should be the protocol's 64 (another one is used as it
            is, the real clips resized to it, and the table says so).
        data: UCF101 folder (with ``ucfTrainTestlist``), BAIR ``softmotion30_44k`` (or a ``.npy``
            / ``.hdf5`` copy), or the Kinetics-600 video folder (``split_file``: its
            ``test.csv``, found next to it when not given).
        smoke: tiny counts (:data:`SMOKE`) and the stand-in network unless one is given.
        num: generated videos (table1/table3), or test videos (table2; default 256).
        samples_per_video: table2's samples per test video (default 100).
        num_real: table1's real clips for FID (default: as many as samples).
        sampler, steps, recon_weight: default the protocol's (module docstring).
        shard_size: videos per shard (default 256, one BAIR sample round); batch_size: videos
            per sampler call (default: min(shard size, 32)).
        c3d: C3D weights (table1); i3d: I3D weights (table2/3); feature_net: any network
            instead (``extract(v) -> (features, logits)``, ``features``/``logits`` methods, or a
            plain callable used for both).
        resize: FVD's resize to 224, ``"torch"`` or ``"tf1"`` (the original TF code's).
        clip: where clips start (``"random"`` seeded, ``"first"``, ``"center"``; UCF101/Kinetics).
        real_split: table1's real split (``"train"``, as tgan2, or ``"test"``).
        max_shards: stop after making this many new shards (the table is written once all exist).
        workers: DataLoader workers for decoding real videos.
    Returns:
        The result (also ``OUT/tableN.json``): settings, shard counts, scores, rows.
    """
    from ..config import build_schedule
    from ..sampling import load_model, sample_videos

    if table not in TABLES:
        raise ValueError(f"table must be one of {TABLES}, got {table!r}")
    if resize not in ("torch", "tf1"):
        raise ValueError(f"resize must be 'torch' or 'tf1', got {resize!r}")
    proto = PROTOCOLS[table]
    small = SMOKE[table] if smoke else {}
    out = Path(out_dir or f"runs/reproduce/{table}{'-smoke' if smoke else ''}")
    model, cfg, step = load_model(checkpoint, weights=weights, device=device)
    dev = next(model.parameters()).device
    if cfg.condition != "none":
        raise ValueError(f"the protocols of Tables 1-3 take an unconditional model; {checkpoint} is conditioned on {cfg.condition!r}")
    res = cfg.resolution
    if table == "table2":
        test_videos = int(num or small.get("test_videos", proto.test_videos))
        per_video = int(samples_per_video or small.get("samples_per_video", proto.samples_per_video))
        total = test_videos * per_video
    else:
        test_videos, per_video = 0, 1
        total = int(num or small.get("num_videos", proto.num_videos))
    if total < 2:
        raise ValueError(f"need at least 2 videos to score, got {total}")
    steps = int(steps or (SMOKE["steps"] if smoke else proto.steps))
    sampler = sampler or proto.sampler
    w_r = float(recon_weight if recon_weight is not None else (proto.recon_weight or 0.0))
    shard = int(shard_size or (SMOKE["shard_size"] if smoke else proto.shard_size))
    batch = int(batch_size or min(shard, 32))
    ctx, frames = proto.context, proto.frames
    if ctx and cfg.frames <= ctx:
        raise ValueError(f"{checkpoint} sees {cfg.frames} frames at once; conditioning on {ctx} needs more")
    dataset = _dataset(table, data, res, split_file=split_file, clip=clip, real_split=real_split, seed=seed)
    if table == "table2" and len(dataset) < test_videos:
        raise ValueError(f"{data} holds {len(dataset)} BAIR videos; the protocol takes {test_videos} test videos")
    settings = {
        "table": table, "checkpoint": str(Path(checkpoint).resolve()), "step": step, "weights": weights,
        "data": str(Path(data).resolve()), "num_videos": total, "test_videos": test_videos,
        "samples_per_video": per_video, "frames": frames, "context_frames": ctx, "generated_frames": frames - ctx,
        "resolution": res, "sampler": sampler, "steps": steps, "recon_weight": w_r if ctx else None,
        "gamma": cfg.gamma, "seed": seed, "shard_size": shard, "clip": clip, "smoke": smoke,
    }  # fmt: skip
    _check_settings(out, settings)
    if res != proto.resolution:
        warnings.warn(f"{checkpoint} samples {res}x{res}; the protocol of {table} is {proto.resolution}x{proto.resolution} "
                      f"(real clips are resized to {res}x{res}; the numbers are not the paper's)", stacklevel=2)  # fmt: skip

    # real clips behind the conditioning (table2: the test videos; table3: the test clips)
    bair_real = None
    if table == "table2":
        bair_real = torch.stack([dataset[v]["video"] for v in range(test_videos)])  # (V, 3, 16, R, R)
    clips = _Cycled(dataset, total) if table == "table3" else None
    schedule = build_schedule(cfg)

    def generate(a: int, b: int, k: int) -> dict[str, np.ndarray]:
        from ..tasks import extend_video

        vids, vid_idx, smp_idx = [], [], []
        for j, s in enumerate(range(a, b, batch)):
            e = min(b, s + batch)
            g = _seed(seed, k, j)
            if table == "table1":
                v, _ = sample_videos(model, cfg, e - s, sampler=sampler, steps=steps, seed=g, frames=frames, device=dev,
                                     progress=progress)  # fmt: skip
            else:
                if table == "table2":
                    vi = [i % test_videos for i in range(s, e)]
                    real = bair_real[vi]
                    vid_idx += vi
                    smp_idx += [i // test_videos for i in range(s, e)]
                else:
                    real = torch.stack([clips[i] for i in range(s, e)])
                v = extend_video(model, real[:, :, :ctx].to(dev), frames, block_frames=cfg.frames, context_frames=ctx,
                                 method="reconstruction", recon_weight=w_r, sampler=sampler, steps=steps, gamma=cfg.gamma,
                                 schedule=schedule, generator=g, progress=progress).cpu()  # fmt: skip
            if v.shape[2] != frames:
                raise RuntimeError(f"sampled {v.shape[2]} frames, the protocol needs {frames}")
            vids.append(_to_uint8(v))
        arrays = {"videos": np.concatenate(vids), "index": np.arange(a, b, dtype=np.int64)}
        if table == "table2":
            arrays.update(video_index=np.array(vid_idx, np.int64), sample_index=np.array(smp_idx, np.int64))
        return arrays

    shards = _shard_paths(out, total, shard)
    reused, made, t_sample = [], [], 0.0
    for k, (path, a, b) in enumerate(shards):
        if path.exists():
            reused.append(k)
            continue
        if max_shards is not None and len(made) >= max_shards:
            break
        path.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        arrays = generate(a, b, k)
        dt = time.perf_counter() - t0
        t_sample += dt
        _atomic_savez(path, **arrays, seconds=np.float64(dt), batch_size=np.int64(batch))
        made.append(k)
    complete = all(p.exists() for p, _, _ in shards)
    result: dict[str, Any] = {
        **settings, "title": proto.title + (" [SMOKE RUN]" if smoke else ""), "source": str(checkpoint),
        "block_frames": cfg.frames, "shards": {"total": len(shards), "reused": reused, "generated": made},
        "complete": complete, "sampling_seconds": round(t_sample, 2), "resize": resize if proto.metric == "i3d" else None,
        "environment": environment(), "command": command, "paper": proto.paper, "metrics": None,
    }  # fmt: skip
    if not complete:
        result["rows"] = {}
        return result

    scorer = _scorer(table, proto, feature_net=feature_net, c3d=c3d, i3d=i3d, resize=resize, smoke=smoke, device=dev)
    result["feature_net"] = scorer.name if scorer is not None else None
    if scorer is not None:
        t0 = time.perf_counter()
        result["metrics"] = _metrics(table, scorer, out, shards, dataset, bair_real, clips, settings, num_real, small,
                                     batch, workers)  # fmt: skip
        result["scoring_seconds"] = round(time.perf_counter() - t0, 2)
    result["rows"] = _rows(table, proto, result)
    write_result(out, table, result)  # tableN.json, and tableN.md made from it (markdown)
    return result


@torch.no_grad()
def _run(scorer: _Scorer, batches, device) -> tuple[torch.Tensor, torch.Tensor | None]:
    feats, logits = [], []
    for v in batches:
        f, lg = scorer.extract(v.to(device) if device is not None else v)
        feats.append(f.reshape(f.shape[0], -1).double().cpu())
        if lg is not None:
            logits.append(lg.double().cpu())
    return torch.cat(feats), (torch.cat(logits) if logits else None)


def _real_features(scorer, out: Path, key: dict, make_batches) -> tuple[torch.Tensor, torch.Tensor | None]:
    path = out / "real_features.pt"
    if path.exists():
        cached = torch.load(path, weights_only=True)
        if cached.get("key") == json.dumps(key, sort_keys=True):
            return cached["features"], cached.get("logits")
    feats, logits = _run(scorer, make_batches(), scorer.device())
    torch.save({"key": json.dumps(key, sort_keys=True), "features": feats, "logits": logits}, path)
    return feats, logits


def _metrics(table, scorer, out, shards, dataset, bair_real, clips, settings, num_real, small, batch, workers) -> dict:
    from ..metrics import frechet_from_features, inception_score

    dev = scorer.device()
    paths = [p for p, _, _ in shards]

    def column(name: str) -> np.ndarray:
        return np.concatenate([_shard_array(p, name) for p in paths])

    def fake_batches():  # one shard in memory at a time
        for p in paths:
            yield from _from_uint8(_shard_array(p, "videos")).split(batch)

    fake_f, fake_l = _run(scorer, fake_batches(), dev)
    key = {"net": scorer.name, **{k: settings[k] for k in ("table", "data", "resolution", "clip", "seed")}}
    m: dict[str, Any] = {"n_fake": int(fake_f.shape[0]), "feature_dim": int(fake_f.shape[1])}

    def is_of(logits, splits, name):
        if logits is None:  # a feature network without a classifier: no IS
            return {"value": None, "std": None, "n": 0, "splits": 0}
        r = inception_score(logits, splits=min(splits, logits.shape[0]), name=name)
        return {"value": r.value, "std": r.std, "n": r.n, "splits": r.splits}

    if table == "table1":
        n_real = int(num_real or small.get("num_real", settings["num_videos"]))
        key["num_real"] = n_real
        cyc = _Cycled(dataset, n_real)
        real_f, real_l = _real_features(scorer, out, key, lambda: _loader(cyc, range(n_real), batch, workers))
        fid = frechet_from_features(real_f, fake_f, name="FID")
        m.update(fid=fid.value, n_real=fid.n_real, is_all=is_of(fake_l, 1, "IS"), is_splits=is_of(fake_l, 10, "IS"),
                 real_is=is_of(real_l, 1, "IS (real)"))  # fmt: skip
    elif table == "table2":
        key["test_videos"] = settings["test_videos"]
        real_f, _ = _real_features(scorer, out, key, lambda: iter(bair_real.split(batch)))
        vid, smp = column("video_index"), column("sample_index")
        rounds = []
        for s in range(settings["samples_per_video"]):
            sel = np.nonzero(smp == s)[0]
            sel = sel[np.argsort(vid[sel])]
            rounds.append(frechet_from_features(real_f, fake_f[torch.from_numpy(sel)]).value)
        pooled = frechet_from_features(real_f, fake_f, name="FVD")
        r = torch.tensor(rounds, dtype=torch.float64)
        m.update(fvd=float(r.mean()), fvd_std=float(r.std(unbiased=False)), fvd_rounds=rounds, fvd_pooled=pooled.value,
                 n_real=int(real_f.shape[0]))  # fmt: skip
    else:
        key["num_videos"] = settings["num_videos"]
        real_f, real_l = _real_features(scorer, out, key, lambda: _loader(clips, range(settings["num_videos"]), batch, workers))
        fvd = frechet_from_features(real_f, fake_f, name="FVD")
        m.update(fvd=fvd.value, n_real=fvd.n_real, is_all=is_of(fake_l, 1, "IS"), is_splits=is_of(fake_l, 10, "IS"),
                 real_is=is_of(real_l, 1, "IS (real)"))  # fmt: skip
        if getattr(dataset, "num_missing", 0):
            m["missing_videos"] = dataset.num_missing
    if getattr(dataset, "num_skipped", 0):
        m["skipped_files"] = dataset.num_skipped
    return m


# -- tables ------------------------------------------------------------------------------

_COLUMNS = {
    "table1": (("fid", "FID (C3D)"), ("is", "IS (C3D)")),
    "table2": (("fvd", "FVD"), ("fvd_pooled", "FVD pooled")),
    "table3": (("fvd", "FVD"), ("is", "IS (I3D)")),
}
_EXTRA = {
    "table1": (("fid_pm", "FID ±"), ("is_pm", "IS ± (splits)"), ("n", "samples")),
    "table2": (("fvd_pm", "FVD ± (over sample rounds)"), ("n", "samples")),
    "table3": (("fvd_pm", "FVD ±"), ("is_pm", "IS ± (splits)"), ("n", "samples")),
}


def _splits_text(r: dict) -> str:
    return f"± {r['std']:.2f} ({r['splits']} splits: mean {r['value']:.2f})" if r["value"] is not None else ""


def _rows(table: str, proto: Protocol, result: dict) -> dict:
    m = result["metrics"]
    run = f"this run ({result['sampler']}, {result['steps']} steps" + (f", w_r={result['recon_weight']:g})" if proto.context else ")")
    rows: dict[str, dict] = {}
    if m is None:
        rows[run] = {"n": f"{result['num_videos']} samples made, not scored (no feature network)"}
    elif table == "table1":
        rows[run] = {"fid": m["fid"], "is": m["is_all"]["value"], "is_pm": _splits_text(m["is_splits"]),
                     "n": f"{m['n_fake']} vs {m['n_real']} real"}  # fmt: skip
        rows["real clips (this data)"] = {"is": m["real_is"]["value"], "n": f"{m['real_is']['n']}"}
    elif table == "table2":
        rows[run] = {"fvd": m["fvd"], "fvd_pooled": m["fvd_pooled"], "fvd_pm": f"± {m['fvd_std']:.2f}",
                     "n": f"{result['samples_per_video']} x {result['test_videos']} vs {m['n_real']} real"}  # fmt: skip
    else:
        rows[run] = {"fvd": m["fvd"], "is": m["is_all"]["value"], "is_pm": _splits_text(m["is_splits"]),
                     "n": f"{m['n_fake']} vs {m['n_real']} real"}  # fmt: skip
        rows["real clips (this data)"] = {"is": m["real_is"]["value"], "n": f"{m['real_is']['n']}"}
    for name, vals in proto.paper.items():
        rows[name] = dict(vals)
    return rows


def markdown(result: dict) -> str:
    """``tableN.md`` from a result (or ``tableN.json``) of :func:`reproduce_benchmark`."""
    table = result["table"]
    proto = PROTOCOLS[table]
    ctx = result["context_frames"]
    what = (f"{result['num_videos']} unconditional samples of {result['frames']}x{result['resolution']}x{result['resolution']}"
            if not ctx else
            f"{result['generated_frames']} frames generated after {ctx} given ({result['frames']} frames at "
            f"{result['resolution']}x{result['resolution']}), {result['num_videos']} videos"
            + (f" ({result['samples_per_video']} per test video x {result['test_videos']} test videos)" if table == "table2" else ""))
    intro = []
    if result["smoke"]:
        intro.append("**SMOKE RUN**: tiny counts" + (" and a stand-in feature network" if "stand-in" in str(result.get("feature_net")) else "")
                     + "; these numbers only show that the pipeline runs and are not comparable with the paper's.")
    intro += [
        f"Model `{result['source']}` (step {result['step']}, {result['weights']} weights); {what}; {result['sampler']} sampler, "
        f"{result['steps']} steps" + (f", reconstruction guidance w_r = {result['recon_weight']:g}" if ctx else "")
        + f", seed {result['seed']}. Data `{result['data']}`.",
        f"Scored with {result.get('feature_net') or 'nothing (give --c3d / --i3d weights)'}"
        + (f"; FVD resize: {result['resize']}." if result.get("resize") else "."),
        *proto.notes,
        "Rows `paper: ...` are the numbers the paper reports (Section 4), set beside this run's.",
    ]
    if result["resolution"] != proto.resolution:
        intro.append(f"The model samples {result['resolution']}x{result['resolution']}, not the protocol's "
                     f"{proto.resolution}x{proto.resolution}: real clips were resized to match.")  # fmt: skip
    times = f"sampling {result['sampling_seconds']} s this call (shards made: {len(result['shards']['generated'])}, reused: {len(result['shards']['reused'])})"
    intro.append(times + (f", scoring {result['scoring_seconds']} s." if "scoring_seconds" in result else "."))
    return table_markdown(proto.title + (" [smoke run]" if result["smoke"] else ""), intro, _COLUMNS[table], result,
                          extra_cols=_EXTRA[table])  # fmt: skip


# -- the command line --------------------------------------------------------------------


def _given(argv: Sequence[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in argv)


def cli_reproduce(args, extra: Sequence[str]) -> int:
    """``vdm-lite reproduce table1|table2|table3 CHECKPOINT --data=...`` (called by :mod:`vdm_lite.cli`)."""
    import argparse

    from ..cli import UsageError, _command_line

    class Parser(argparse.ArgumentParser):
        def error(self, message):
            raise UsageError(message)

    p = Parser(prog=f"vdm-lite reproduce {args.table}", add_help=False)
    p.add_argument("--data", default=None)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--c3d", default=None)
    p.add_argument("--i3d", default=None)
    p.add_argument("--resize", choices=["torch", "tf1"], default="torch")
    p.add_argument("--samples-per-video", type=int, default=None)
    p.add_argument("--shard-size", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--split-file", default=None)
    p.add_argument("--clip", choices=["random", "first", "center"], default=None)
    p.add_argument("--real-split", choices=["train", "test"], default="train")
    p.add_argument("--max-shards", type=int, default=None)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--weights", choices=["ema", "model"], default="ema")
    a = p.parse_args(list(extra))
    if not args.checkpoint:
        raise UsageError(f"{args.table} evaluates a model: give its run directory or .safetensors file")
    if a.data is None:
        raise UsageError(f"{args.table} needs --data=PATH ({ {'table1': 'the UCF-101 folder', 'table2': 'softmotion30_44k', 'table3': 'the Kinetics-600 videos'}[args.table] })")
    argv = getattr(args, "argv", [])

    def given(name: str, default, *flags: str):  # options of the main parser: only when given (else the protocol's)
        value = getattr(args, name)
        return value if value != default or any(_given(argv, f) for f in flags) else None

    w_r = given("recon_weights", "5,20", "--recon-weight", "--recon-weights")  # argparse reads --recon-weight as this
    try:
        w_r = None if w_r is None else float(w_r)
    except ValueError:
        raise UsageError(f"--recon-weight takes one number for {args.table} (w_r of eq. (7)), got {w_r!r}") from None
    out = Path(args.out) if args.out else None
    res = reproduce_benchmark(
        args.table, args.checkpoint, a.data, out_dir=out, smoke=a.smoke, num=args.num, samples_per_video=a.samples_per_video,
        num_real=given("num_real", 512, "--num-real"), sampler=given("sampler", "ancestral", "--sampler"),
        steps=given("steps", 64, "--steps"), recon_weight=w_r, seed=args.seed,
        shard_size=a.shard_size, batch_size=a.batch_size, c3d=a.c3d, i3d=a.i3d, resize=a.resize, split_file=a.split_file,
        clip=a.clip, real_split=a.real_split, weights=a.weights, device=args.device, max_shards=a.max_shards,
        workers=a.workers, command=_command_line(args),
    )  # fmt: skip
    out = Path(args.out or f"runs/reproduce/{args.table}{'-smoke' if a.smoke else ''}")
    sh = res["shards"]
    print(f"vdm-lite reproduce: {len(sh['reused'])} shard(s) already there, {len(sh['generated'])} made, of {sh['total']} "
          f"in {out / 'samples'}")  # fmt: skip
    if not res["complete"]:
        print(f"vdm-lite reproduce: stopped with {sh['total'] - len(sh['reused']) - len(sh['generated'])} shard(s) to go; "
              "run the same command again to continue")  # fmt: skip
        return 0
    print((out / f"{args.table}.md").read_text())
    print(f"vdm-lite reproduce: wrote {out / (args.table + '.md')} and {args.table}.json")
    return 0
