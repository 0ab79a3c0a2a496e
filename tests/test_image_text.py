"""The image-text correlation scorer: stand-in and open_clip backends, and the proof on data_samples/."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

import kit
from kit.quality.image_text.scorer import ImageTextScorer, load_embeddings, sample_texts
from kit.quality.image_text.neighbours import neighbour_text_embeddings

TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
LONG_ANSWER = " ".join(f"detail{i}" for i in range(300))  # > 256 MiniLM tokens and > 77 CLIP tokens


def _conv(q, a):
    return [{"from": "human", "value": "<image>\n" + q}, {"from": "gpt", "value": a}]


@pytest.fixture(scope="module")
def small_pool(tmp_path_factory):
    """Six easy-vqa samples; one image is corrupted after loading (fails only at score time)."""
    from kit.quality.image_text.lit_training import easyvqa_split, easyvqa_truth

    root = tmp_path_factory.mktemp("pool")
    (root / "images").mkdir()
    data = easyvqa_split("train")
    records = []
    for k, image_id in enumerate(list(data)[:6]):
        path, qs, ans = data[image_id]
        colour, shape = easyvqa_truth(qs, ans)
        shutil.copyfile(path, root / "images" / f"ev{k}.png")
        answer = LONG_ANSWER if k == 1 else f"A {colour} {shape}."
        records.append({"id": f"s{k}", "image": f"ev{k}.png", "conversations": _conv("What is in the image?", answer)})
    (root / "pool.json").write_text(json.dumps(records))
    pool = kit.load_pool(root / "pool.json")
    assert len(pool) == 6
    (root / "images" / "ev3.png").write_bytes(b"not a png any more")
    return pool


@pytest.fixture(scope="module")
def standin_scores(small_pool, tmp_path_factory):
    emb = tmp_path_factory.mktemp("emb")
    scorer = ImageTextScorer(progress=False, embeddings_dir=emb, neighbours=2)
    table, info = scorer.score(small_pool)   # the scorer's table and what it declares about it
    return scorer, table, emb, info


def test_registered():
    assert "image_text" in kit.SCORERS
    assert kit.SCORERS.get("image_text") is ImageTextScorer


def test_standin_table_shape_status_and_label(small_pool, standin_scores):
    _, table, _, info = standin_scores
    assert list(table.index) == small_pool.ids
    for col in ["image_text", "text", "truncated", "n_tokens", "status", "scorer"]:
        assert col in table.columns
    assert table.at["s3", "status"].startswith("image failed to decode")
    assert np.isnan(table.at["s3", "image_text"])
    ok = table.drop(index="s3")
    assert (ok["status"] == "ok").all() and ok["image_text"].between(-1, 1).all()
    assert "not CLIP" in info.label and "standin" in info.label
    assert (table["scorer"] == info.label).all()
    assert info.details["n_failed"] == 1 and info.columns[0] == "image_text" and info.pool_dependent


def test_standin_truncation_and_text(standin_scores):
    _, table, _, _ = standin_scores
    assert table["truncated"].tolist() == [False, True, False, False, False, False]
    assert table.at["s1", "n_tokens"] > 256
    kept = table.at["s1", "text"]
    assert kept.startswith("What is in the image?\ndetail0") and len(kept) < len(LONG_ANSWER)
    assert table.at["s0", "text"].startswith("What is in the image?\nA ")
    assert "<image>" not in table.at["s0", "text"]


def test_standin_score_is_weighted_sum_of_parts_and_embeddings_reproduce_it(small_pool, standin_scores):
    scorer, table, emb, _ = standin_scores
    weights = scorer.backend.weights
    assert set(weights) == {"concept", "head", "neighbours"} and abs(sum(weights.values()) - 1) < 1e-9
    parts = sum(w * table[f"image_text_{p}"] for p, w in weights.items() if w > 0)
    np.testing.assert_allclose(parts.drop("s3"), table["image_text"].drop("s3"), atol=1e-5)
    ids, image, text = load_embeddings(emb)
    assert ids == small_pool.ids and image.shape[0] == text.shape[0] == 6
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1, atol=1e-5)
    dots = np.einsum("ij,ij->i", image, text)
    np.testing.assert_allclose(dots[[0, 1, 2, 4, 5]], table["image_text"].drop("s3").to_numpy(), atol=1e-5)
    assert np.isnan(image[3]).all()


def test_text_modes(small_pool):
    q = sample_texts(small_pool, "questions")
    a = sample_texts(small_pool, "answers")
    assert q[0] == "What is in the image?" and a[0].startswith("A ")
    with pytest.raises(ValueError):
        sample_texts(small_pool, "captions")
    with pytest.raises(ValueError):
        ImageTextScorer(text="captions")


def test_standin_parts_can_be_switched_off_and_table_saves(small_pool, tmp_path):
    table = kit.score(small_pool, "image_text", progress=False, head=None, neighbours=0, text="answers",
                      out=tmp_path / "s.parquet")
    back = kit.load_scores(tmp_path / "s.parquet")
    pd.testing.assert_frame_equal(back, table, check_like=True)
    assert "image_text_head" not in table and "image_text_neighbours" not in table
    np.testing.assert_allclose(table["image_text"].dropna(), table["image_text_concept"].dropna(), atol=1e-5)
    assert "concept bottleneck x1.00" in kit.score_info(table).label


def test_neighbours_are_leave_one_out():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(30, 16)).astype(np.float32)
    texts = rng.normal(size=(30, 8)).astype(np.float32)
    base = neighbour_text_embeddings(feats, texts, k=5)
    changed = texts.copy()
    changed[7] = rng.normal(size=8)
    again = neighbour_text_embeddings(feats, changed, k=5)
    np.testing.assert_allclose(again[7], base[7], atol=1e-6)  # own text never used for own image
    ok = np.ones(30, bool)
    ok[4] = False
    masked = neighbour_text_embeddings(feats, texts, ok, k=5)
    assert np.isnan(masked[4]).all() and not np.isnan(masked[np.arange(30) != 4]).any()
    # with a reference subset the result keeps its shape and unit norm
    sub = neighbour_text_embeddings(feats, texts, k=3, max_reference=10, block=7)
    np.testing.assert_allclose(np.linalg.norm(sub, axis=1), 1, atol=1e-5)
    assert neighbour_text_embeddings(feats[:1], texts[:1]) is None


def test_neighbours_can_skip_identical_images():
    rng = np.random.default_rng(1)
    feats = rng.normal(size=(20, 16)).astype(np.float32)
    feats[5] = feats[3]                       # samples 3 and 5 share one image file
    texts = rng.normal(size=(20, 8)).astype(np.float32)
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    near = neighbour_text_embeddings(feats, texts, k=1)
    np.testing.assert_allclose(near[3], texts[5], atol=1e-5)   # its twin is its nearest neighbour
    far = neighbour_text_embeddings(feats, texts, k=1, skip_identical=True)
    assert not np.allclose(far[3], texts[5], atol=1e-3) and not np.allclose(far[5], texts[3], atol=1e-3)
    others = np.arange(20) != 3
    np.testing.assert_allclose(far[others & (np.arange(20) != 5)], near[others & (np.arange(20) != 5)], atol=1e-6)


# --------------------------------------------------------------------------- open_clip

@pytest.fixture(scope="module")
def tiny_clip_name(tmp_path_factory):
    import open_clip

    d = tmp_path_factory.mktemp("clipcfg")
    (d / "kit-tiny-clip.json").write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(d / "kit-tiny-clip.json")
    return "kit-tiny-clip"


def test_open_clip_random_model_scores_and_truncates(small_pool, tiny_clip_name, tmp_path):
    scorer = ImageTextScorer(backend="open_clip", model_name=tiny_clip_name, pretrained=None, progress=False,
                             embeddings_dir=tmp_path)
    table, info = scorer.score(small_pool)
    assert scorer.backend.context_length == 77
    assert table["truncated"].tolist() == [False, True, False, False, False, False]
    assert table.at["s1", "n_tokens"] > 77
    assert table.at["s1", "text"].startswith("what is in the image") and len(table.at["s1", "text"]) < 400
    assert np.isnan(table.at["s3", "image_text"]) and table.at["s3", "status"] != "ok"
    assert "open_clip kit-tiny-clip (random init" in info.label and info.details["n_truncated"] == 1
    ids, image, text = load_embeddings(tmp_path)
    assert image.shape == (6, 32)
    np.testing.assert_allclose(np.einsum("ij,ij->i", image, text)[[0, 1, 2, 4, 5]],
                               table["image_text"].dropna().to_numpy(), atol=1e-5)


def test_open_clip_local_checkpoint_loads(small_pool, tiny_clip_name, tmp_path):
    import open_clip

    torch.manual_seed(0)
    model, _, _ = open_clip.create_model_and_transforms(tiny_clip_name, pretrained=None)
    ckpt = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), ckpt)
    a = kit.score(small_pool, "image_text", backend="open_clip", model_name=tiny_clip_name, pretrained=str(ckpt),
                  progress=False)
    b = kit.score(small_pool, "image_text", backend="open_clip", model_name=tiny_clip_name, pretrained=str(ckpt),
                  progress=False, batch_size=2)
    np.testing.assert_allclose(a["image_text"].to_numpy(), b["image_text"].to_numpy(), atol=1e-5)
    # the checkpoint's weights were used: scoring with them directly gives the same numbers
    from kit.quality.image_text.openclip import OpenClipBackend

    backend = OpenClipBackend(tiny_clip_name, pretrained=None)
    backend.model.load_state_dict(model.state_dict())
    preprocess, tokenize = backend.worker_fns()
    img = preprocess(small_pool.image("s0")).unsqueeze(0)
    tok = tokenize(sample_texts(small_pool.subset(["s0"])))
    direct = float((backend.encode_images(img) @ backend.encode_texts(tok.tokens).T)[0, 0])
    assert abs(direct - a.at["s0", "image_text"]) < 1e-5


def test_unknown_backend():
    with pytest.raises(KeyError, match="unknown image-text backend .clip-please.*Registered: open_clip, standin"):
        ImageTextScorer(backend="clip-please")


# --------------------------------------------------------------------------- proof on data_samples/

@pytest.fixture(scope="module")
def data_samples(repo_root):
    pool_path = repo_root / "data_samples" / "pool.json"
    labels_path = repo_root / "data_samples" / "labels.csv"
    if not (pool_path.is_file() and labels_path.is_file()):
        pytest.skip("data_samples/ not built (make samples)")
    labels = pd.read_csv(labels_path, dtype={"id": str, "origin": str}, keep_default_na=False)
    return kit.load_pool(pool_path), labels.set_index("id"), pool_path


def test_head_never_saw_data_samples_images(data_samples):
    from kit.models.lit_head import load_head
    from kit.quality.image_text.lit_training import pool_easyvqa_images

    _, _, pool_path = data_samples
    meta = load_head().meta
    _, named = pool_easyvqa_images(pool_path)
    trained = {(meta["split"], i) for i in meta["image_ids"]}
    assert named and not (named & trained)


def test_mismatches_score_lower_on_data_samples(data_samples):
    from sklearn.metrics import roc_auc_score

    pool, labels, _ = data_samples
    table = kit.score(pool, "image_text", progress=False)
    table = table.join(labels[["defect", "origin"]])
    assert (table["status"] == "ok").all()
    judged = table[table["defect"].isin(["none", "mismatch"])]
    is_clean = (judged["defect"] == "none").to_numpy()
    auc = roc_auc_score(is_clean, judged["image_text"])
    mism = table[table["defect"] == "mismatch"]
    assert len(mism) >= 5
    lower = (mism["image_text"].to_numpy() < table.loc[mism["origin"], "image_text"].to_numpy()).mean()
    print(f"\nstand-in image-text on data_samples: ROC AUC clean vs mismatch = {auc:.3f} "
          f"({len(mism)} mismatches, {is_clean.sum()} clean); lower than origin: {lower:.0%}")
    assert auc >= 0.75
    assert lower >= 0.75


def test_lit_head_training_refuses_a_missing_pool_to_leave_out(tmp_path):
    """A pool named to keep out of the LiT head's training images that is not there is an error, never a silent
    training on every image (an installed kit has no data_samples/ in its working directory)."""
    import pytest

    from kit.quality.image_text.lit_training import build_training_set

    with pytest.raises(FileNotFoundError, match="no-pool.json"):
        build_training_set("train", exclude_pool=tmp_path / "no-pool.json", limit=2)
