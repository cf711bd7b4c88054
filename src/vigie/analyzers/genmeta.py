"""Parse what image generators write into files into one normalised structure.

Covers Automatic1111/Forge/SD.Next (``parameters`` text), ComfyUI (``prompt`` API graph and ``workflow`` UI
graph), InvokeAI (``invokeai_metadata``, legacy ``sd-metadata`` and ``Dream``), NovelAI (``Software``,
``Comment`` and alpha-channel "stealth" copies), Fooocus and SwarmUI (JSON in ``parameters``), Midjourney
(``Description`` with a Job ID) and EXIF UserComment copies. Everything here is a claim written by software:
it can be forged or stripped, and the findings built from it say so.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

_LORA_TAG = re.compile(r"<(lora|lyco|hypernet):([^:>]+)(?::([-0-9.]+))?[^>]*>", re.I)
_KV = re.compile(r'\s*([A-Za-z][\w /().-]*?):\s*("(?:[^"\\]|\\.)*"|[^,]*)(?:,|$)')
_JOB_ID = re.compile(r"Job ID:\s*([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})", re.I)
_MAX_TEXT = 200_000


@dataclass
class GenerationInfo:
    """What a generator says about how it made the image."""

    generator: str
    source_key: str
    prompt: str | None = None
    negative_prompt: str | None = None
    model: str | None = None
    model_hash: str | None = None
    loras: list[dict[str, Any]] = field(default_factory=list)
    seed: int | str | None = None
    sampler: str | None = None
    steps: int | str | None = None
    cfg_scale: float | str | None = None
    size: str | None = None
    version: str | None = None
    workflow_nodes: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, [], {})}


def _clip(text: Any) -> str | None:
    if text is None:
        return None
    s = str(text)
    return s[:_MAX_TEXT] if s.strip() else None


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _loras_from_prompt(prompt: str | None) -> list[dict[str, Any]]:
    if not prompt:
        return []
    return [
        {"name": m.group(2), "weight": m.group(3), "kind": m.group(1).lower()}
        for m in _LORA_TAG.finditer(prompt)
    ]


# ------------------------------------------------------------------------------------------ A1111 family
def parse_a1111(text: str, source_key: str = "parameters") -> GenerationInfo | None:
    """Prompt, optional ``Negative prompt:`` and a last line of ``Key: value, …`` settings."""
    lines = text.strip().split("\n")
    if not lines:
        return None
    settings_line = lines[-1] if re.match(r"^\s*Steps:\s*\d+", lines[-1]) else None
    if settings_line is None:
        return None
    body = lines[:-1]
    neg_idx = next((i for i, ln in enumerate(body) if ln.startswith("Negative prompt:")), None)
    if neg_idx is None:
        prompt, negative = "\n".join(body), None
    else:
        prompt = "\n".join(body[:neg_idx])
        negative = "\n".join(body[neg_idx:])[len("Negative prompt:") :].strip()
    kv: dict[str, str] = {}
    for m in _KV.finditer(settings_line):
        val = m.group(2).strip()
        if val.startswith('"') and val.endswith('"'):
            val = val[1:-1].replace('\\"', '"')
        kv[m.group(1).strip()] = val
    version = kv.get("Version")
    generator = "Automatic1111"
    if version and version.startswith("f"):
        generator = "Forge"
    elif "SD.Next" in text or kv.get("App") == "SD.Next":
        generator = "SD.Next"
    loras = _loras_from_prompt(prompt)
    if "Lora hashes" in kv:
        for part in kv["Lora hashes"].split(","):
            name, _, h = part.partition(":")
            if name.strip():
                loras.append({"name": name.strip(), "hash": h.strip() or None, "kind": "lora"})
    return GenerationInfo(
        generator=generator,
        source_key=source_key,
        prompt=_clip(prompt),
        negative_prompt=_clip(negative),
        model=kv.get("Model"),
        model_hash=kv.get("Model hash"),
        loras=loras,
        seed=kv.get("Seed"),
        sampler=kv.get("Sampler"),
        steps=kv.get("Steps"),
        cfg_scale=kv.get("CFG scale"),
        size=kv.get("Size"),
        version=version,
        settings={
            k: v for k, v in kv.items() if k not in {"Model", "Model hash", "Seed", "Sampler", "Steps"}
        },
    )


# ------------------------------------------------------------------------------------------------ ComfyUI
def _follow_text(graph: dict[str, Any], ref: Any, depth: int = 0) -> list[str]:
    """Strings feeding a conditioning input, following links ([node_id, output]) through the graph."""
    if depth > 40:
        return []
    if isinstance(ref, str):
        return [ref]
    if not (isinstance(ref, list) and ref and str(ref[0]) in graph):
        return []
    node = graph[str(ref[0])]
    inputs = node.get("inputs", {}) if isinstance(node, dict) else {}
    texts: list[str] = []
    for key in (
        "text",
        "text_g",
        "text_l",
        "prompt",
        "string",
        "value",
        "conditioning",
        "conditioning_1",
        "conditioning_2",
        "conditioning_to",
        "conditioning_from",
        "positive",
        "clip_l",
        "t5xxl",
    ):
        if key in inputs:
            for t in _follow_text(graph, inputs[key], depth + 1):
                if t not in texts:
                    texts.append(t)
    return texts


def parse_comfy(prompt_json: str | None, workflow_json: str | None) -> GenerationInfo | None:
    graph = _loads(prompt_json) if prompt_json else None
    workflow = _loads(workflow_json) if workflow_json else None
    if not isinstance(graph, dict) and not isinstance(workflow, dict):
        return None
    info = GenerationInfo(generator="ComfyUI", source_key="prompt" if isinstance(graph, dict) else "workflow")
    if isinstance(workflow, dict) and isinstance(workflow.get("nodes"), list):
        info.workflow_nodes = len(workflow["nodes"])
    if not isinstance(graph, dict):
        return info
    pos: list[str] = []
    neg: list[str] = []
    for node in graph.values():
        if not isinstance(node, dict):
            continue
        ctype = str(node.get("class_type", ""))
        inputs = node.get("inputs", {}) if isinstance(node.get("inputs"), dict) else {}
        if "Sampler" in ctype or "Guider" in ctype:
            pos += [t for t in _follow_text(graph, inputs.get("positive")) if t not in pos]
            neg += [t for t in _follow_text(graph, inputs.get("negative")) if t not in neg]
            for k, attr in (
                ("seed", "seed"),
                ("noise_seed", "seed"),
                ("steps", "steps"),
                ("cfg", "cfg_scale"),
                ("sampler_name", "sampler"),
            ):
                if k in inputs and not isinstance(inputs[k], list) and getattr(info, attr) is None:
                    setattr(info, attr, inputs[k])
        elif ctype.startswith(("CheckpointLoader", "UNETLoader", "UnetLoader")):
            info.model = info.model or inputs.get("ckpt_name") or inputs.get("unet_name")
        elif "Lora" in ctype and isinstance(inputs.get("lora_name"), str):
            info.loras.append(
                {"name": inputs["lora_name"], "weight": inputs.get("strength_model"), "kind": "lora"}
            )
        elif ctype == "EmptyLatentImage" and "width" in inputs:
            info.size = f"{inputs.get('width')}x{inputs.get('height')}"
    info.prompt = _clip("\n".join(pos)) if pos else None
    info.negative_prompt = _clip("\n".join(neg)) if neg else None
    return info


# ------------------------------------------------------------------------------------------------ InvokeAI
def parse_invoke(text: str, key: str) -> GenerationInfo | None:
    doc = _loads(text) if key != "Dream" else None
    if key == "Dream":
        m = re.match(r'\s*"(.*)"\s*(.*)$', text, re.S)
        prompt, opts = (m.group(1), m.group(2)) if m else (text, "")
        flags = dict(re.findall(r"-([A-Za-z])\s*(\S+)", opts))
        return GenerationInfo(
            generator="InvokeAI",
            source_key=key,
            prompt=_clip(prompt),
            seed=flags.get("S"),
            steps=flags.get("s"),
            cfg_scale=flags.get("C"),
            sampler=flags.get("A"),
            size=f"{flags['W']}x{flags['H']}" if "W" in flags and "H" in flags else None,
        )
    if not isinstance(doc, dict):
        return None
    if key == "sd-metadata":
        got = doc.get("image")
        image: dict[str, Any] = got if isinstance(got, dict) else {}
        prompt = image.get("prompt")
        if isinstance(prompt, list):
            prompt = " ".join(str(p.get("prompt", "")) for p in prompt if isinstance(p, dict))
        return GenerationInfo(
            generator="InvokeAI",
            source_key=key,
            prompt=_clip(prompt),
            model=doc.get("model_weights"),
            seed=image.get("seed"),
            steps=image.get("steps"),
            cfg_scale=image.get("cfg_scale"),
            sampler=image.get("sampler"),
            version=doc.get("app_version"),
        )
    model = doc.get("model")
    loras = []
    for lo in doc.get("loras") or []:
        if isinstance(lo, dict):
            ref = lo.get("model") or lo.get("lora") or {}
            loras.append(
                {
                    "name": ref.get("name") if isinstance(ref, dict) else ref,
                    "weight": lo.get("weight"),
                    "kind": "lora",
                }
            )
    return GenerationInfo(
        generator="InvokeAI",
        source_key=key,
        prompt=_clip(doc.get("positive_prompt")),
        negative_prompt=_clip(doc.get("negative_prompt")),
        model=model.get("name") if isinstance(model, dict) else model,
        model_hash=model.get("hash") if isinstance(model, dict) else None,
        loras=loras,
        seed=doc.get("seed"),
        steps=doc.get("steps"),
        cfg_scale=doc.get("cfg_scale"),
        sampler=doc.get("scheduler"),
        size=f"{doc['width']}x{doc['height']}" if "width" in doc and "height" in doc else None,
        version=doc.get("app_version"),
    )


# ----------------------------------------------------------------------------------------- JSON schemes
def parse_json_parameters(text: str) -> GenerationInfo | None:
    """Fooocus and SwarmUI write JSON into ``parameters``."""
    doc = _loads(text)
    if not isinstance(doc, dict):
        return None
    if isinstance(doc.get("sui_image_params"), dict):
        p = doc["sui_image_params"]
        return GenerationInfo(
            generator="SwarmUI",
            source_key="parameters",
            prompt=_clip(p.get("prompt")),
            negative_prompt=_clip(p.get("negativeprompt")),
            model=p.get("model"),
            seed=p.get("seed"),
            steps=p.get("steps"),
            cfg_scale=p.get("cfgscale"),
            sampler=p.get("sampler"),
            size=f"{p['width']}x{p['height']}" if "width" in p and "height" in p else None,
            loras=[{"name": n, "kind": "lora"} for n in p.get("loras") or [] if isinstance(n, str)],
            version=p.get("swarm_version"),
        )
    lower = {str(k).lower(): v for k, v in doc.items()}
    if "prompt" in lower and ("fooocus" in text.lower() or "base model" in lower or "base_model" in lower):
        loras = lower.get("loras") or []
        return GenerationInfo(
            generator="Fooocus",
            source_key="parameters",
            prompt=_clip(lower.get("prompt")),
            negative_prompt=_clip(lower.get("negative prompt") or lower.get("negative_prompt")),
            model=lower.get("base model") or lower.get("base_model"),
            seed=lower.get("seed"),
            steps=lower.get("steps"),
            sampler=lower.get("sampler"),
            cfg_scale=lower.get("guidance scale"),
            loras=[{"name": str(x[0]) if isinstance(x, list) else str(x), "kind": "lora"} for x in loras]
            if isinstance(loras, list)
            else [],
            version=lower.get("version"),
        )
    return None


def parse_novelai(chunks: dict[str, str]) -> GenerationInfo | None:
    if chunks.get("Software", "").strip() != "NovelAI" and "NovelAI" not in chunks.get("Source", ""):
        return None
    comment = _loads(chunks.get("Comment", "")) or {}
    if not isinstance(comment, dict):
        comment = {}
    return GenerationInfo(
        generator="NovelAI",
        source_key="Comment" if comment else "Software",
        prompt=_clip(comment.get("prompt") or chunks.get("Description")),
        negative_prompt=_clip(comment.get("uc")),
        model=chunks.get("Source"),
        seed=comment.get("seed"),
        steps=comment.get("steps"),
        sampler=comment.get("sampler"),
        cfg_scale=comment.get("scale"),
        size=f"{comment['width']}x{comment['height']}"
        if "width" in comment and "height" in comment
        else None,
    )


def parse_midjourney(chunks: dict[str, str]) -> GenerationInfo | None:
    desc = chunks.get("Description", "")
    m = _JOB_ID.search(desc)
    if not m:
        return None
    prompt = desc[: m.start()].strip()
    return GenerationInfo(
        generator="Midjourney",
        source_key="Description",
        prompt=_clip(prompt),
        settings={"job_id": m.group(1)},
    )


def parse_text_fields(chunks: dict[str, str]) -> list[GenerationInfo]:
    """Every generator record found among a file's text fields (PNG chunks or decoded EXIF comment)."""
    found: list[GenerationInfo] = []
    params = chunks.get("parameters")
    if params:
        info = parse_json_parameters(params) if params.lstrip().startswith("{") else parse_a1111(params)
        if info:
            found.append(info)
    if "prompt" in chunks or "workflow" in chunks:
        info = parse_comfy(chunks.get("prompt"), chunks.get("workflow"))
        if info:
            found.append(info)
    for key in ("invokeai_metadata", "sd-metadata", "Dream"):
        if key in chunks:
            info = parse_invoke(chunks[key], key)
            if info:
                found.append(info)
                break
    for parser in (parse_novelai, parse_midjourney):
        info = parser(chunks)
        if info:
            found.append(info)
    return found
