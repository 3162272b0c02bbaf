"""Train the two-stage landmark model (PyTorch, CPU or GPU).

    python -m tools.landmarks.train --config demo --out runs/demo --epochs 120
    python -m tools.landmarks.train --out runs/demo --resume          # continue a run
    python -m tools.landmarks.train --config demo --init tools/checkpoints/demo.pt \
        --teacher tools/checkpoints/full.pt --out runs/demo_kd       # distil from the full model
        (add --distill-heatmap W to also match the teacher's stage-1 heatmaps)

Writes runs/NAME/last.pt (model + optimizer, for resume), best.pt (model only,
best validation NME) and log.csv (one line per epoch). Validation is a
fixed-seed 10% split of the training folders by photo id (tools.landmarks.data).
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import json
import math
import sys
import threading
import queue
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tools import common
from tools.landmarks import data as D
from tools.landmarks import evaluate as E
from tools.landmarks.config import (INPUT_SIZE, demo_config, full_config, lite_config, make_config,
                                    with_input_size)
from tools.landmarks.export import load_checkpoint
from tools.landmarks.model import LandmarkNet, count_params

CONFIGS = {"demo": demo_config, "lite": lite_config, "full": full_config}
DEFAULT_DATA = common.SHARED_DATA / "300w"


def gaussian_targets(points, size, sigma):
    """points (N, L, 2) in map pixels -> Gaussian maps (N, L, size, size) in [0, 1]."""
    r = torch.arange(size, dtype=points.dtype, device=points.device)
    dx = (r[None, None, :] - points[..., 0:1]) ** 2  # (N, L, W)
    dy = (r[None, None, :] - points[..., 1:2]) ** 2  # (N, L, H)
    d2 = dy[..., :, None] + dx[..., None, :]
    return torch.exp(-d2 / (2 * sigma * sigma)), d2


def heatmap_loss(logits, points, sigma, floor):
    """Distance-weighted sigmoid cross-entropy (paper): w = 2 d^2 / (W^2 + H^2).

    `floor` is added to w so the pixels at the landmark still get a gradient.
    Summed over pixels, averaged over landmarks and batch.
    """
    size = logits.shape[-1]
    target, d2 = gaussian_targets(points, size, sigma)
    w = 2.0 * d2 / (2.0 * size * size) + floor
    ce = F.binary_cross_entropy_with_logits(logits, target, weight=w, reduction="none")
    return ce.sum((-1, -2)).mean()


def face_weights(gt, norm):
    """Per-face weights (N,) of the coordinate loss: None for "none"; for "ip" one over each
    face's inter-pupil distance (gt (N, 68, 2)), scaled to mean 1 over the batch, so that a
    pixel counts as much as it does in the NME by inter-pupil distance (faces turned aside
    have a small one)."""
    if norm in (None, "none"):
        return None
    if norm != "ip":
        raise ValueError(f"unknown coordinate normalisation {norm!r} (none, ip)")
    ip = torch.linalg.vector_norm(gt[:, 36:42].mean(1) - gt[:, 42:48].mean(1), dim=-1)
    inv = 1.0 / ip.clamp_min(1e-3)
    return (inv / inv.mean()).detach()


def coord_loss(pred, gt, kind, scale, weight=None):
    """Per-point coordinate loss averaged over points and batch; pred, gt (N, L, 2) input pixels.
    weight : optional (N,) per-face weights (`face_weights`), mean 1 or so.

    Errors are measured in units of `scale` input pixels (the stage-1 stride: heatmap
    pixels). "l2": squared distance (the paper); "l1": distance, whose gradient does
    not vanish as the error shrinks, so it keeps pulling at sub-pixel errors where
    the heatmap terms dominate; "wing": Feng et al.'s Wing loss (w=1, eps=0.25 heatmap
    px here), log-shaped for small errors, L1 for large ones.
    """
    if kind == "l2":
        per = (((pred - gt) / scale) ** 2).sum(-1)
    else:
        d = torch.linalg.vector_norm((pred - gt) / scale, dim=-1)
        if kind == "l1":
            per = d
        elif kind == "wing":
            w, eps = 1.0, 0.25
            c = w - w * math.log(1 + w / eps)
            per = torch.where(d < w, w * torch.log1p(d / eps), d - c)
        else:
            raise ValueError(f"unknown coordinate loss {kind!r} (l2, l1, wing)")
    if weight is None:
        return per.mean()
    return (per.mean(-1) * weight).mean()


def compute_loss(out, gt, cfg, use_heatmap=True, use_l2=True, use_stage2=True):
    """gt (N, L, 2) in input pixels. Returns (loss, parts dict).

    cfg["loss"]: sigma1/sigma2 (Gaussian target, heatmap pixels), weight_floor,
    coord ("l2" default, "l1", "wing") and lambda_l2, the coordinate term's weight
    (named for the paper's L2; it weighs whichever coordinate loss is chosen); coord_norm
    ("none" default, "ip": each face's term over its inter-pupil distance, `face_weights`).
    """
    lc = cfg["loss"]
    kind = lc.get("coord", "l2")
    s1 = cfg["heatmap"]["stride"]
    rf = cfg["refine"]
    r = rf["roi_size"]
    g1 = (gt + 0.5) / s1 - 0.5
    fw = face_weights(gt, lc.get("coord_norm"))
    parts = {}
    loss = 0.0
    if use_heatmap:
        parts["hm1"] = heatmap_loss(out["heatmaps"], g1, lc["sigma1"], lc["weight_floor"])
        loss = loss + parts["hm1"]
    if use_l2:
        parts["l2_1"] = coord_loss(out["coarse"], gt, kind, s1, fw)
        loss = loss + lc["lambda_l2"] * parts["l2_1"]
    if use_stage2:
        step = rf["roi_spacing"] * rf["stride"]
        g2 = (gt - out["coarse"].detach()) / step + (r - 1) / 2.0
        if use_heatmap:
            parts["hm2"] = heatmap_loss(out["refine_heatmaps"], g2, lc["sigma2"], lc["weight_floor"])
            loss = loss + parts["hm2"]
        if use_l2:
            parts["l2_2"] = coord_loss(out["refined"], gt, kind, s1, fw)
            loss = loss + lc["lambda_l2"] * parts["l2_2"]
    return loss, parts


def nme(pred, gt):
    """Per-face NME (fraction) by inter-ocular and inter-pupil distance. (N, 68, 2) arrays."""
    return common.nme(pred, gt, "io"), common.nme(pred, gt, "ip")


def to_tensor(imgs, cfg, device):
    """uint8 (N, S, S, 3) BGR -> normalised float (N, 3, S, S) channels_last."""
    inp = cfg["input"]
    x = torch.from_numpy(np.ascontiguousarray(imgs)).to(device).permute(0, 3, 1, 2).float()
    x = (x - inp["mean"]) / inp["std"]
    return x.contiguous(memory_format=torch.channels_last)


# --augment presets. "none" trains on the evaluation crops themselves (the overfit
# check); "light" keeps flips, small rolls and colour but no occluders.
AUGMENT = {
    "full": D.AugmentParams(),
    "light": D.AugmentParams(max_rotation_deg=15.0, scale_range=0.1, shift=0.05, blur=0.1,
                             noise=0.1, occlude=0.0, gray=0.05),
    "none": None,
}


class Batches:
    """Augmented batches made in a background thread (OpenCV releases the GIL).

    augment: D.AugmentParams, or None for the fixed evaluation crops (no randomness
    but the order).
    """

    def __init__(self, samples, cfg, batch_size, seed, epoch, augment=D.AugmentParams()):
        self.samples, self.cfg, self.bs = samples, cfg, batch_size
        self.augment = augment
        self.rng = np.random.default_rng([seed, epoch])
        self.q = queue.Queue(maxsize=4)
        self.n = len(samples) // batch_size
        threading.Thread(target=self._work, daemon=True).start()

    def _work(self):
        size = self.cfg["input"]["size"]
        scale = self.cfg["crop"]["box_scale"]
        order = self.rng.permutation(len(self.samples))
        for b in range(self.n):
            imgs, pts = [], []
            for i in order[b * self.bs:(b + 1) * self.bs]:
                if self.augment is None:
                    im, p, _ = D.eval_crop(self.samples[i], size, scale)
                else:
                    im, p = D.augment_crop(self.samples[i], size, scale, self.rng, self.augment)
                imgs.append(im)
                pts.append(p)
            self.q.put((np.stack(imgs), np.stack(pts)))

    def __iter__(self):
        for _ in range(self.n):
            yield self.q.get()


def evaluate(model, val, cfg, device, batch=64, prefix="val"):
    """NME (fractions), mean loss and global signed error (bias, fraction of the
    inter-ocular distance) of `val` samples cropped from their landmark boxes;
    keys start with `prefix`."""
    size, scale = cfg["input"]["size"], cfg["crop"]["box_scale"]
    crops = [D.eval_crop(s, size, scale) for s in val]
    imgs = np.stack([c[0] for c in crops])
    gts = np.stack([c[1] for c in crops])
    model.eval()
    coarse, refined, losses = [], [], []
    with torch.no_grad():
        for i in range(0, len(imgs), batch):
            out = model(to_tensor(imgs[i:i + batch], cfg, device))
            loss, _ = compute_loss(out, torch.from_numpy(gts[i:i + batch]).to(device), cfg)
            losses.append(float(loss) * len(imgs[i:i + batch]))
            coarse.append(out["coarse"].cpu().numpy())
            refined.append(out["refined"].cpu().numpy())
    model.train()
    refined = np.concatenate(refined)
    c_io, c_ip = nme(np.concatenate(coarse), gts)
    r_io, r_ip = nme(refined, gts)
    bias = E.bias(refined, gts)  # % of the inter-ocular distance
    return {f"{prefix}_loss": sum(losses) / len(imgs), f"{prefix}_nme_io": float(r_io.mean()),
            f"{prefix}_nme_ip": float(r_ip.mean()), f"{prefix}_coarse_nme_io": float(c_io.mean()),
            f"{prefix}_bias_x": bias["mean_x"] / 100, f"{prefix}_bias_y": bias["mean_y"] / 100}


def update_ema(ema, model, decay):
    """ema <- decay * ema + (1 - decay) * model for parameters; buffers (BN statistics) copied."""
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.mul_(decay).add_(p, alpha=1 - decay)
        for e, b in zip(ema.buffers(), model.buffers()):
            e.copy_(b)


BETA_LR_SCALE = 100.0


def load_teacher(path, cfg, device):
    """A trained checkpoint whose refined points become extra targets (--teacher); it must read
    the student's crops (same input size, normalisation and crop scale) into heatmaps of the
    same stride (--distill-heatmap compares them pixel by pixel)."""
    teacher, _ = load_checkpoint(path)
    tcfg = teacher.cfg
    if tcfg["input"] != cfg["input"] or tcfg["crop"] != cfg["crop"]:
        raise SystemExit(f"--teacher {path}: its crops differ from the student's "
                         f"({tcfg['input']}, {tcfg['crop']} against {cfg['input']}, {cfg['crop']})")
    if tcfg["heatmap"]["stride"] != cfg["heatmap"]["stride"]:
        raise SystemExit(f"--teacher {path}: its heatmap stride {tcfg['heatmap']['stride']} "
                         f"differs from the student's {cfg['heatmap']['stride']}")
    return teacher.to(device).to(memory_format=torch.channels_last).requires_grad_(False)


def distill_loss(out, target, cfg):
    """Coordinate loss of the student's coarse and refined points against a teacher's refined
    points target (N, L, 2), input pixels; the teacher is the better localiser of the two."""
    kind, s1 = cfg["loss"].get("coord", "l2"), cfg["heatmap"]["stride"]
    return coord_loss(out["coarse"], target, kind, s1) + coord_loss(out["refined"], target, kind, s1)


def heatmap_distill_loss(student, teacher, beta_s, beta_t):
    """KL divergence of the student's stage-1 softmax read-out from the teacher's.

    student, teacher : stage-1 heatmap logits (N, L, H, W); beta_s, beta_t : each model's
    stage-1 inverse temperature (its soft-argmax reads softmax(beta * logits)). Summed over
    pixels, averaged over landmarks and batch. Where the points only say where the teacher
    looks, the maps also say how sure it is and what else it considered (a jaw point's spread
    along the jaw).
    """
    t = F.log_softmax(beta_t * teacher.flatten(2).float(), dim=-1)
    s = F.log_softmax(beta_s * student.flatten(2).float(), dim=-1)
    return (t.exp() * (t - s)).sum(-1).mean()


def flip_shift_arg(text: str) -> float | list[float]:
    """--flip-shift: a number, or a tools.landmarks.asymmetry JSON file (one per landmark)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        values = json.loads(Path(text).read_text())["flip_shift"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise argparse.ArgumentTypeError(f"not a number or a flip-shift JSON file: {text} ({exc})")
    if len(values) != 68:
        raise argparse.ArgumentTypeError(f"{text}: {len(values)} offsets, expected 68")
    return [float(v) for v in values]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="demo", help="demo | lite | full | JSON file")
    ap.add_argument("--alpha", type=float, help="width multiplier (overrides --config)")
    ap.add_argument("--data", nargs="+", default=[str(DEFAULT_DATA)])
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, help="total epochs (default 120, or the resumed run's)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, help="peak learning rate (default 3e-3, or the resumed run's)")
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init", help="start from this checkpoint's weights (new schedule)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--no-heatmap-loss", action="store_true")
    ap.add_argument("--no-l2-loss", action="store_true")
    ap.add_argument("--no-stage2", action="store_true")
    ap.add_argument("--coord-loss", choices=["l2", "l1", "wing"], help="coordinate loss (config: l2)")
    ap.add_argument("--lambda-coord", type=float, help="coordinate loss weight (config: 1)")
    ap.add_argument("--coord-norm", choices=["none", "ip"],
                    help="per-face weight of the coordinate loss: ip = over the face's "
                         "inter-pupil distance, as the NME counts it (config: none)")
    ap.add_argument("--sigma", type=float, help="Gaussian target sigma of both stages, heatmap px (config: 1)")
    ap.add_argument("--roi-spacing", type=float,
                    help="stage-2 RoI sample spacing, stage-2 feature px (config: 1)")
    ap.add_argument("--roi-size", type=int, help="stage-2 RoI side, samples (config: 8)")
    ap.add_argument("--learn-beta", action="store_true",
                    help="learn both soft-argmax decoders' inverse temperatures (exported to the "
                         "config; the heatmap loss still sees the raw logits)")
    ap.add_argument("--augment", choices=sorted(AUGMENT), default="full",
                    help="augmentation preset; none = the fixed evaluation crops (overfit check)")
    ap.add_argument("--flip", type=float,
                    help="probability of a mirrored training crop (preset: 0.5). 300-W's x "
                         "convention is not mirror-symmetric, so flips cost a bias in x")
    ap.add_argument("--flip-shift", type=flip_shift_arg,
                    help="the annotations' x offset from mirror symmetry, fraction of the "
                         "inter-ocular distance: a number, or a JSON file of one per landmark "
                         "(tools.landmarks.asymmetry); mirrored crops keep the convention "
                         "(see tools.landmarks.data.AugmentParams.flip_shift)")
    ap.add_argument("--subset", type=int, default=0,
                    help="train on the first N training faces of a fixed shuffle (0: all)")
    ap.add_argument("--fit-faces", type=int, default=133,
                    help="training faces scored each epoch without augmentation (the fit report)")
    ap.add_argument("--eval-every", type=int, default=1, help="score and checkpoint every K epochs")
    ap.add_argument("--ema", type=float, default=0.0,
                    help="keep an exponential moving average of the weights with this decay per "
                         "step (e.g. 0.999); it is what is scored and saved (0: off)")
    ap.add_argument("--bf16", action="store_true",
                    help="run the backbone in bfloat16 autocast (the heads and decoders stay "
                         "float32); about 2.5x faster on CPUs with AVX-512 BF16")
    ap.add_argument("--teacher", help="distil: a trained checkpoint (e.g. the full model's) whose "
                    "refined points on each augmented batch are extra coordinate targets")
    ap.add_argument("--distill", type=float, default=1.0,
                    help="weight of the teacher's targets relative to the ground truth's (with --teacher)")
    ap.add_argument("--distill-heatmap", type=float, default=0.0,
                    help="with --teacher: weight of the KL divergence of the student's stage-1 "
                         "softmax maps from the teacher's (0: points only)")
    ap.add_argument("--input-size", type=int,
                    help=f"crop side in pixels (config: {INPUT_SIZE}); with --init the weights carry over")
    ap.add_argument("--time-limit", type=float, default=0,
                    help="stop (checkpointed, resumable) after the first scored epoch past "
                         "this many seconds (0: no limit)")
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    last = out / "last.pt"
    state = torch.load(last, map_location="cpu", weights_only=False) if args.resume else None
    # A resumed run keeps its peak learning rate unless --lr says otherwise.
    args.lr = args.lr or (state or {}).get("lr") or 3e-3
    args.bf16 = args.bf16 or bool((state or {}).get("bf16"))  # a resumed run keeps its precision
    if state is not None:
        cfg = state["config"]
    elif args.alpha is not None:
        cfg = make_config(alpha=args.alpha, name=f"alpha{args.alpha:g}")
    elif args.config in CONFIGS:
        cfg = CONFIGS[args.config]()
    else:
        cfg = json.loads(Path(args.config).read_text())
    if state is None and args.input_size:
        cfg = with_input_size(cfg, args.input_size)
    if state is None:
        cfg["training"] = dict(use_heatmap=not args.no_heatmap_loss,
                               use_l2=not args.no_l2_loss, use_stage2=not args.no_stage2,
                               learn_beta=args.learn_beta)
        cfg["recipe"] = dict(augment=args.augment, subset=args.subset, flip=args.flip,
                             flip_shift=args.flip_shift)
        if args.teacher:
            cfg["recipe"].update(teacher=args.teacher, distill=args.distill,
                                 distill_heatmap=args.distill_heatmap)
        for key, value in (("coord", args.coord_loss), ("lambda_l2", args.lambda_coord),
                           ("coord_norm", args.coord_norm),
                           ("sigma1", args.sigma), ("sigma2", args.sigma)):
            if value is not None:
                cfg["loss"][key] = value
        for key, value in (("roi_spacing", args.roi_spacing), ("roi_size", args.roi_size)):
            if value is not None:
                cfg["refine"][key] = value
    flags = {k: cfg["training"][k] for k in ("use_heatmap", "use_l2", "use_stage2")}
    recipe = cfg.get("recipe", {"augment": "full", "subset": 0})

    pairs = [p for root in args.data for p in D.find_pairs(root)]
    train_pairs, val_pairs = D.split_pairs(pairs, 0.1, seed=0)
    t0 = time.time()
    train = D.load_samples(train_pairs)
    val = D.load_samples(val_pairs)
    order = D.training_order(len(train))
    if recipe["subset"]:
        train = [train[i] for i in order[:recipe["subset"]]]
        order = np.arange(len(train))
    fit = [train[i] for i in order[:args.fit_faces]]
    print(f"data: {len(train)} train / {len(val)} val faces from {args.data} "
          f"(decoded in {time.time() - t0:.1f}s); augment {recipe['augment']}; loss {cfg['loss']}",
          flush=True)

    device = torch.device(args.device)
    model = LandmarkNet(cfg).to(device).to(memory_format=torch.channels_last)
    # Adam moves a parameter about lr per step, too slow for the decoders' log temperatures
    # (0.1 over a 5-epoch fine-tune): they get BETA_LR_SCALE x the rate and no weight decay.
    rest = [p for name, p in model.named_parameters() if name != "log_beta"]
    opt = torch.optim.AdamW([{"params": rest},
                             {"params": [model.log_beta], "lr_scale": BETA_LR_SCALE, "weight_decay": 0.0}],
                            lr=args.lr, weight_decay=args.weight_decay)
    start, best = 0, math.inf
    if state is not None:
        model.load_state_dict(state.get("raw_model", state["model"]))
        saved = state.get("optimizer")
        if saved is not None and len(saved["param_groups"]) == len(opt.param_groups):
            opt.load_state_dict(saved)
        else:  # a run from before the temperatures' own group, or a last.pt committed without
            # its optimizer state (a third of the size, to carry a long run across sessions)
            print("resume: no optimizer state of this layout, Adam's moments restart", flush=True)
        start, best = state["epoch"] + 1, state["best"]
        args.epochs = args.epochs or state["epochs"]
    elif args.init:
        init = torch.load(args.init, map_location="cpu", weights_only=False)
        model.load_state_dict(init["model"])
    args.epochs = args.epochs or 120
    teacher = load_teacher(recipe["teacher"], cfg, device) if recipe.get("teacher") else None
    # The EMA copy is what gets scored and saved; the raw weights stay in last.pt to resume.
    ema = None
    if args.ema or (state or {}).get("ema"):
        args.ema = args.ema or state["ema"]
        ema = copy.deepcopy(model)
        if state is not None:
            ema.load_state_dict(state["model"])
    print(f"model {cfg['name']}: {count_params(model)} params, epochs {start}..{args.epochs}",
          flush=True)

    log = common.EpochLog(out / "log.csv", ["epoch", "lr", "train_loss", "val_loss", "val_nme_io", "val_nme_ip",
              "val_coarse_nme_io", "seconds", "fit_nme_io", "fit_nme_ip", "fit_coarse_nme_io",
              "fit_bias_x", "fit_bias_y", "val_bias_x", "val_bias_y"])
    augment = AUGMENT[recipe["augment"]]
    if augment is not None:  # the recipe's flip settings override the preset's
        augment = dataclasses.replace(augment, **{k: recipe[k] for k in ("flip", "flip_shift")
                                                  if recipe.get(k) is not None})
    warmup = 2
    # --bf16: the forward passes of training (the student's and the teacher's); scoring stays float32.
    low_precision = functools.partial(torch.autocast, device.type, dtype=torch.bfloat16, enabled=args.bf16)
    t_start = t0 = time.time()
    for epoch in range(start, args.epochs):
        lr = common.cosine_lr(args.lr, epoch, args.epochs, warmup)
        for g in opt.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)
        total, n = 0.0, 0
        for imgs, pts in Batches(train, cfg, args.batch, args.seed, epoch, augment):
            x = to_tensor(imgs, cfg, device)
            gt = torch.from_numpy(pts).to(device)
            with low_precision():
                pred = model(x)
            loss, _ = compute_loss(pred, gt, cfg, **flags)
            if teacher is not None:
                with torch.no_grad(), low_precision():
                    taught = teacher(x)
                loss = loss + recipe["distill"] * cfg["loss"]["lambda_l2"] * distill_loss(
                    pred, taught["refined"], cfg)
                if recipe.get("distill_heatmap"):
                    loss = loss + recipe["distill_heatmap"] * heatmap_distill_loss(
                        pred["heatmaps"], taught["heatmaps"], model.log_beta.exp()[0],
                        teacher.log_beta.exp()[0])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if ema is not None:
                update_ema(ema, model, args.ema)
            total += float(loss.detach()) * len(imgs)
            n += len(imgs)
        if (epoch + 1) % args.eval_every and epoch + 1 < args.epochs:
            continue
        scored = model if ema is None else ema
        metrics = evaluate(scored, val, cfg, device)
        fit_metrics = evaluate(scored, fit, cfg, device, prefix="fit")
        row = {"epoch": epoch, "lr": lr, "train_loss": total / max(n, 1), **metrics,
               **fit_metrics, "seconds": time.time() - t0}  # since the last scored epoch
        t0 = time.time()
        log.write(row)
        model_state = {k: v.detach().cpu() for k, v in scored.state_dict().items()}
        # Without stage 2 its layers stay untrained: judge the run by its coarse points.
        score = metrics["val_nme_io"] if flags["use_stage2"] else metrics["val_coarse_nme_io"]
        if score < best:
            best = score
            torch.save({"config": cfg, "model": model_state, "epoch": epoch,
                        "metrics": metrics}, out / "best.pt")
        tmp = out / "last.pt.tmp"
        resume = {"config": cfg, "model": model_state, "optimizer": opt.state_dict(),
                  "epoch": epoch, "epochs": args.epochs, "lr": args.lr, "best": best,
                  "bf16": args.bf16}
        if ema is not None:
            resume.update(raw_model=model.state_dict(), ema=args.ema)
        torch.save(resume, tmp)
        tmp.replace(last)
        if args.time_limit and time.time() - t_start > args.time_limit and epoch + 1 < args.epochs:
            print(f"time limit: stopped after epoch {epoch}; --resume continues", flush=True)
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
