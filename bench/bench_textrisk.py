"""Text risk quality and speed: vigie.textrisk vs a plain keyword-list baseline, same texts, same run.

Quality: the labelled development set (bench/data/textrisk/dev.jsonl; the hold-out set with --holdout),
positives = label ``sexual_minors``. A text counts as flagged when the action is review or block (the
review threshold). Reported per language and per kind: recall, false-positive rate on hard negatives and
on all negatives; the baseline flags a text when it contains any word of a minor list and any word of a
sexual list (lower-cased substring search over the same twelve languages, as keyword filters do).
Speed: per-prompt latency on one core (median, p99, including the embedding stage when it runs) and batch
throughput over 2 worker processes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from vigie.textrisk import TextRisk

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data" / "textrisk"
RESULTS = ROOT / "bench" / "results"


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# The baseline: what a keyword filter looks like — one list of minor words, one of sexual words.
BASELINE_MINOR = _words(
    "child kid minor underage preteen toddler baby loli shota schoolgirl teen "
    "enfant fillette mineur gamin niño niña menor nena kind kinder mädchen minderjährig bambin "
    "bambina minorenne criança menina menor kind meisje minderjarig dziecko dziewczynka nieletni "
    "ребенок дети девочка мальчик 子供 児童 幼女 少女 小学生 中学生 儿童 萝莉 "
    "아동 어린이 초등학생 미성년 "
)
BASELINE_SEXUAL = _words(
    "nude naked nsfw porn explicit sex sexy lewd hentai erotic nu nue porno sexuel desnud desnuda "
    "sexo nackt sexuell nudo nuda sessuale nua pelada naakt seks naga nagie seks голая голый порно "
    "секс 裸 ヌード エロ ポルノ 色情 裸体 性爱 누드 알몸 포르노 야한 "
)


def baseline(text: str) -> bool:
    t = text.lower()
    return any(w in t for w in BASELINE_MINOR) and any(w in t for w in BASELINE_SEXUAL)


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _rates(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    pos = [r for r in rows if r["label"] == "sexual_minors"]
    hard = [r for r in rows if r["group"] == "hard_negative"]
    neg = [r for r in rows if r["label"] != "sexual_minors"]
    return {
        "n": len(rows),
        "recall": round(sum(r[key] for r in pos) / len(pos), 4) if pos else None,
        "fp_hard": round(sum(r[key] for r in hard) / len(hard), 4) if hard else None,
        "fp_all_negatives": round(sum(r[key] for r in neg) / len(neg), 4) if neg else None,
        "false_negatives": [r["id"] for r in pos if not r[key]],
        "false_positives": [r["id"] for r in neg if r[key]],
    }


def quality(engine: TextRisk, items: list[dict[str, Any]]) -> dict[str, Any]:
    rows = []
    for it in items:
        a = engine.assess(it["text"], it.get("kind") or "prompt", it.get("negative"), None)
        rows.append(
            {
                **it,
                "vigie": a.action != "allow",
                "baseline": baseline(it["text"] + " " + (it.get("negative") or "")),
                "score": a.score,
                "stage": a.stage,
                "pred_label": a.label,
            }
        )
    out: dict[str, Any] = {}
    for method in ("vigie", "baseline"):
        out[method] = {
            "overall": _rates(rows, method),
            "by_lang": {
                k: _rates([r for r in rows if r["lang"] == k], method)
                for k in sorted({r["lang"] for r in rows})
            },
            "by_kind": {
                k: _rates([r for r in rows if r["kind"] == k], method)
                for k in sorted({r["kind"] for r in rows})
            },
        }
    labelled = [r for r in rows if r["label"] in ("sexual_adult", "minor_nonsexual", "none", "sexual_minors")]
    out["label_accuracy"] = round(
        sum(r["pred_label"] == r["label"] for r in labelled) / max(len(labelled), 1), 4
    )
    out["semantic_share"] = round(sum(r["stage"] == "semantic" for r in rows) / max(len(rows), 1), 4)
    return out


def latency(engine: TextRisk, texts: list[dict[str, Any]], repeat: int) -> dict[str, float]:
    for it in texts[:20]:
        engine.assess(it["text"], it.get("kind") or "prompt", it.get("negative"))
    times = []
    for _ in range(repeat):
        for it in texts:
            t0 = time.perf_counter()
            engine.assess(it["text"], it.get("kind") or "prompt", it.get("negative"))
            times.append(time.perf_counter() - t0)
    times.sort()
    return {
        "median_ms": round(statistics.median(times) * 1000, 4),
        "p99_ms": round(times[int(len(times) * 0.99) - 1] * 1000, 4),
        "max_ms": round(times[-1] * 1000, 4),
        "per_s_one_core": round(len(times) / sum(times), 1),
    }


_WORKER: TextRisk | None = None


def _init() -> None:
    global _WORKER
    _WORKER = TextRisk()
    _WORKER.assess("warm up", "prompt")


def _chunk(items: list[dict[str, Any]]) -> int:
    assert _WORKER is not None
    for it in items:
        _WORKER.assess(it["text"], it.get("kind") or "prompt", it.get("negative"))
    return len(items)


def throughput(items: list[dict[str, Any]], workers: int, total: int) -> float:
    batch = (items * (total // len(items) + 1))[:total]
    chunks = [batch[i : i + 500] for i in range(0, len(batch), 500)]
    with ProcessPoolExecutor(workers, initializer=_init) as pool:
        list(pool.map(_chunk, [chunks[0][:50]] * workers))  # start-up and warm-up outside the clock
        t0 = time.perf_counter()
        done = sum(pool.map(_chunk, chunks))
        return done / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--holdout", action="store_true", help="score the hold-out set instead of the dev set")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--total", type=int, default=20_000, help="texts in the throughput run")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    path = DATA / ("holdout.jsonl" if args.holdout else "dev.jsonl")
    items = load(path)
    engine = TextRisk()
    lexical = TextRisk(semantic=None)
    q = quality(engine, items)
    q_lex = quality(lexical, items)
    lat = latency(engine, items, args.repeat)
    tput = throughput(items, 2, args.total)
    result = {
        "set": path.name,
        "texts": len(items),
        "producer": engine.producer,
        "quality": q,
        "quality_lexical_only": {k: q_lex[k] for k in ("vigie", "label_accuracy")},
        "latency_one_core": lat,
        "batch_texts_per_s_2_workers": round(tput, 1),
        "env": {"python": sys.version.split()[0], "machine": platform.machine(), "cpus": os.cpu_count()},
    }
    print(f"{path.name}: {len(items)} texts, {engine.producer}")
    print(
        f"{'lang':6} {'n':>4} | {'vigie recall':>12} {'FP hard':>8} | {'keyword recall':>14} {'FP hard':>8}"
    )
    for lang in sorted(q["vigie"]["by_lang"]):
        v, b = q["vigie"]["by_lang"][lang], q["baseline"]["by_lang"][lang]
        print(f"{lang:6} {v['n']:>4} | {v['recall']:>12.3f} {v['fp_hard']:>8.3f} |", end=" ")
        print(f"{b['recall']:>14.3f} {b['fp_hard']:>8.3f}")
    v, b = q["vigie"]["overall"], q["baseline"]["overall"]
    print(f"{'all':6} {v['n']:>4} | {v['recall']:>12.3f} {v['fp_hard']:>8.3f} |", end=" ")
    print(f"{b['recall']:>14.3f} {b['fp_hard']:>8.3f}")
    print(
        "by kind (vigie recall / FP hard):",
        {k: (x["recall"], x["fp_hard"]) for k, x in q["vigie"]["by_kind"].items()},
    )
    lv = q_lex["vigie"]["overall"]
    print(f"lexical stage alone: recall {lv['recall']:.3f}, FP hard {lv['fp_hard']:.3f};", end=" ")
    print(f"label accuracy {q['label_accuracy']:.3f}")
    print(f"latency one core: median {lat['median_ms']:.3f} ms, p99 {lat['p99_ms']:.3f} ms;", end=" ")
    print(f"batch 2 workers: {tput:,.0f} texts/s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = args.out or RESULTS / ("textrisk_holdout.json" if args.holdout else "textrisk.json")
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
