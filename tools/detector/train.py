"""Train the single-shot face detector (PyTorch, CPU or GPU).

    python -m tools.detector.train --out runs/detector --epochs 120
    python -m tools.detector.train --out runs/detector --resume    # continue a run
    python -m tools.detector.train --init tools/checkpoints/detector.pt --out runs/det2 --lr 1e-3
    python -m tools.detector.train --out runs/smoke --limit 40 --epochs 3 --epoch-samples 256 --threads 1

Writes runs/NAME/last.pt (model + optimizer, for resume), best.pt (model only,
best held-out recall at the config's score threshold, fewer false positives
breaking ties) and log.csv (one line per epoch). Samples are made on the fly
(tools/detector/data.py): photo windows and 300-W faces pasted on photo
backgrounds. Validation runs the full held-out photos (the same 10% as
tools/detector/calibrate_cascade.py) through the run-time path: letterbox, decode, NMS,
map back, IoU >= 0.5 with the landmark box.

Loss: sigmoid cross-entropy on positives + the hardest negatives (3 per positive,
at least `min_negatives` per image), smooth-L1 on the box regression of positives,
both divided by the number of positives. AdamW, warm-up then cosine decay.
"""
from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from nnlite.detector import nms
from tools.common import EpochLog, cosine_lr
from tools.detector import data as DD
from tools.detector.config import CONFIGS
from tools.detector.model import FaceDetectorNet, count_params
from tracker.detection.blaze import boxes_to_frame, letterbox


def to_tensor(imgs, cfg, device):
    """uint8 (N, S, S, 3) BGR -> normalised float (N, 3, S, S)."""
    inp = cfg["input"]
    x = torch.from_numpy(np.ascontiguousarray(imgs)).to(device)
    if inp.get("channels", "bgr") == "rgb":
        x = x.flip(-1)
    x = x.permute(0, 3, 1, 2).float()
    return ((x - inp["mean"]) / inp["std"]).contiguous(memory_format=torch.channels_last)


class Batches:
    """Augmented, anchor-matched batches made by background threads (OpenCV releases the GIL)."""

    def __init__(self, data, cfg, batch_size, n_batches, seed, epoch, workers=1):
        self.q = queue.Queue(maxsize=4 + 2 * workers)
        self.n = n_batches
        matcher = DD.AnchorMatcher(cfg)
        per = [n_batches // workers + (w < n_batches % workers) for w in range(workers)]
        for w in range(workers):
            rng = np.random.default_rng([seed, epoch, w])
            threading.Thread(target=self._work, args=(data, cfg, matcher, batch_size, per[w], rng),
                             daemon=True).start()

    def _work(self, data, cfg, matcher, bs, n, rng):
        for _ in range(n):
            imgs, labels, targets = [], [], []
            for _ in range(bs):
                img, pos, ign = DD.make_sample(data, cfg, rng)
                lab, tgt = matcher(pos, ign)
                imgs.append(img)
                labels.append(lab)
                targets.append(tgt)
            self.q.put((np.stack(imgs), np.stack(labels), np.stack(targets)))

    def __iter__(self):
        for _ in range(self.n):
            yield self.q.get()


def detection_loss(logits, deltas, labels, targets, cfg):
    """-> (loss, cls part, box part); labels (N, A) 1 / 0 / -1 (ignored), targets (N, A, 4)."""
    m = cfg["matching"]
    pos = labels == 1
    neg = labels == 0
    bce = F.binary_cross_entropy_with_logits(logits, pos.float(), reduction="none")
    num_pos = pos.sum(1)
    num_neg = torch.minimum(torch.clamp(m["neg_pos_ratio"] * num_pos, min=m["min_negatives"]),
                            neg.sum(1))
    hardness = torch.where(neg, bce.detach(), torch.full_like(bce, -1.0))
    rank = hardness.argsort(1, descending=True).argsort(1)
    hard = neg & (rank < num_neg[:, None])
    denom = torch.clamp(num_pos.sum(), min=1).float()
    cls = (bce * (pos | hard)).sum() / denom
    box = F.smooth_l1_loss(deltas[pos], targets[pos], beta=1.0 / 9.0, reduction="sum") / denom
    return cls + box, cls, box


def load_val(data):
    """Held-out photos decoded as at run time: [(uint8 image, truth boxes (M, 4))]."""
    return [(cv2.imread(str(p), cv2.IMREAD_COLOR), b) for p, b in zip(data.val_paths, data.val_boxes)]


def evaluate(model, val, cfg, device, batch=32):
    """Held-out recall / false positives at the config's score threshold (run-time path)."""
    size = int(cfg["input"]["size"])
    pad = int(round(float(cfg["letterbox"]["pad_value"])))
    nm = cfg["nms"]
    threshold = float(cfg["score_threshold"])
    floor = min(0.1, threshold)
    model.eval()
    runs = []
    with torch.no_grad():
        for i in range(0, len(val), batch):
            chunk = val[i:i + batch]
            boxed = [letterbox(img, size, pad) for img, _ in chunk]
            logits, deltas = model(to_tensor(np.stack([c for c, _ in boxed]), cfg, device))
            scores = torch.sigmoid(logits).cpu().numpy()
            boxes = model.decode(deltas).cpu().numpy()
            for (_, truth), (_, scale), s, b in zip(chunk, boxed, scores, boxes):
                idx = np.flatnonzero(s >= floor)
                idx = idx[np.argsort(-s[idx], kind="stable")[:nm["pre_nms_top_k"]]]
                kb, ks = nms(b[idx], s[idx], nm["iou"], nm["mode"], nm["max_detections"])
                runs.append((boxes_to_frame(kb, scale), ks, truth))
    model.train()
    at = DD.score_detections(runs, threshold)
    low = DD.score_detections(runs, floor)
    return {"val_recall": at["recall"], "val_fp_per_image": at["false_positives_per_image"],
            "val_mean_iou": at["mean_iou_of_matches"] or 0.0,
            "val_recall_low": low["recall"], "val_fp_low": low["false_positives_per_image"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="blaze160", help=f"{' | '.join(CONFIGS)} | JSON file")
    ap.add_argument("--detect", default=str(DD.DEFAULT_DETECT), help="detect/ photos folder")
    ap.add_argument("--faces", default=str(DD.DEFAULT_FACES), help="300-W face crops folder")
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, help="total epochs (default 120, or the resumed run's)")
    ap.add_argument("--epoch-samples", type=int, default=4096, help="training samples per epoch")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, help="peak learning rate (default 3e-3, or the resumed run's)")
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--warmup", type=int, default=2, help="epochs of linear LR warm-up")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--workers", type=int, default=1, help="sample-making threads")
    ap.add_argument("--limit", type=int, help="use only the first N training photos and faces")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init", help="start from this checkpoint's weights and config (new schedule; "
                                   "--config is ignored)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    last = out / "last.pt"
    state = torch.load(last, map_location="cpu", weights_only=False) if args.resume else None
    if args.resume and state is None:
        raise SystemExit(f"{last}: nothing to resume")
    # A resumed run keeps its peak learning rate unless --lr says otherwise.
    args.lr = args.lr or (state or {}).get("lr") or 3e-3
    init = torch.load(args.init, map_location="cpu", weights_only=False) if args.init else None
    if state is not None:
        cfg = state["config"]
    elif init is not None:
        cfg = init["config"]
    elif args.config in CONFIGS:
        cfg = CONFIGS[args.config]()
    else:
        cfg = json.loads(Path(args.config).read_text())

    t0 = time.time()
    data = DD.load_data(args.detect, args.faces, limit=args.limit)
    val = load_val(data)
    print(f"data: {len(data.train_images)} train photos, {len(data.face_images)} 300-W faces, "
          f"{len(val)} held-out photos ({sum(len(b) for b in data.val_boxes)} faces); "
          f"ready in {time.time() - t0:.1f}s", flush=True)

    device = torch.device(args.device)
    model = FaceDetectorNet(cfg).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    start, best = 0, (-1.0, 0.0)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start, best = state["epoch"] + 1, tuple(state["best"])
        args.epochs = args.epochs or state["epochs"]
    elif init is not None:
        model.load_state_dict(init["model"])
    args.epochs = args.epochs or 120
    print(f"model {cfg['name']}: {count_params(model)} params, {len(model.anchors)} anchors, "
          f"epochs {start}..{args.epochs}, device {device}", flush=True)

    log = EpochLog(out / "log.csv", ["epoch", "lr", "train_loss", "train_cls", "train_box", "val_recall",
              "val_fp_per_image", "val_mean_iou", "val_recall_low", "val_fp_low", "seconds"])
    n_batches = max(1, args.epoch_samples // args.batch)
    for epoch in range(start, args.epochs):
        t0 = time.time()
        lr = cosine_lr(args.lr, epoch, args.epochs, args.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        sums, n = np.zeros(3), 0
        for imgs, labels, targets in Batches(data, cfg, args.batch, n_batches, args.seed, epoch,
                                             args.workers):
            logits, deltas = model(to_tensor(imgs, cfg, device))
            loss, cls, box = detection_loss(logits, deltas, torch.from_numpy(labels).to(device),
                                            torch.from_numpy(targets).to(device), cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sums += [float(loss.detach()), float(cls.detach()), float(box.detach())]
            n += 1
        metrics = evaluate(model, val, cfg, device)
        row = {"epoch": epoch, "lr": lr, "train_loss": sums[0] / n, "train_cls": sums[1] / n,
               "train_box": sums[2] / n, **metrics, "seconds": time.time() - t0}
        log.write(row)
        model_state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        key = (metrics["val_recall"], -metrics["val_fp_per_image"])
        if key > best:
            best = key
            torch.save({"config": cfg, "model": model_state, "epoch": epoch, "metrics": metrics},
                       out / "best.pt")
        tmp = out / "last.pt.tmp"
        torch.save({"config": cfg, "model": model_state, "optimizer": opt.state_dict(),
                    "epoch": epoch, "epochs": args.epochs, "lr": args.lr, "best": list(best)}, tmp)
        tmp.replace(last)
    return 0


if __name__ == "__main__":
    sys.exit(main())
