"""The offline encoders: EfficientNet-Lite0 and all-MiniLM-L6-v2 load from their PyPI packages and behave."""
import numpy as np
import pytest
import torch
from PIL import Image

from kit.models import encoders as oe


@pytest.fixture(scope="module")
def image_encoder():
    return oe.load_image_encoder("cpu")


@pytest.fixture(scope="module")
def text_encoder():
    return oe.load_text_encoder("cpu")


@pytest.fixture(scope="module")
def photos():
    import skimage.data

    return [Image.fromarray(skimage.data.chelsea()), Image.fromarray(skimage.data.coffee())]


def test_loaders_are_cached_per_device(image_encoder, text_encoder):
    assert oe.load_image_encoder("cpu") is image_encoder
    assert oe.load_text_encoder(torch.device("cpu")) is text_encoder


def test_preprocess_shape_and_normalisation(tmp_path):
    img = Image.new("RGB", (64, 40), (124, 116, 104))  # about the ImageNet mean colour
    x = oe.preprocess_image(img)
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32
    assert float(x.abs().max()) < 0.05
    gray = Image.new("L", (300, 500), 255)
    path = tmp_path / "g.png"
    gray.save(path)
    y = oe.preprocess_image(path)  # a path and a non-RGB mode both work
    assert y.shape == (3, 224, 224)
    np.testing.assert_allclose(y[:, 0, 0].numpy(), (1 - oe.IMAGENET_MEAN) / oe.IMAGENET_STD, rtol=1e-5)


def test_image_outputs_agree_with_the_model_forward(image_encoder, photos):
    out = oe.encode_images(image_encoder, photos, output=("pooled", "probs", "logits", "map"))
    assert out["pooled"].shape == (2, 1280) and out["map"].shape == (2, 1280, 7, 7)
    np.testing.assert_allclose(out["map"].mean(axis=(2, 3)), out["pooled"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["probs"].sum(1), 1, rtol=1e-5)
    batch = torch.stack([oe.preprocess_image(p) for p in photos])
    with torch.no_grad():
        ref = image_encoder.model(batch).numpy()
    np.testing.assert_allclose(out["logits"], ref, rtol=1e-4, atol=1e-4)
    # batching does not change the numbers; a single output name returns a bare array
    single = oe.encode_images(image_encoder, photos, batch_size=1)
    np.testing.assert_allclose(single, out["pooled"], rtol=1e-4, atol=1e-5)


def test_imagenet_predictions_make_sense(image_encoder, photos):
    labels = oe.imagenet_labels()
    assert len(labels) == 1000 and labels[0] == "tench"
    probs = oe.encode_images(image_encoder, photos, output="probs")
    top = [labels[i] for i in probs.argmax(1)]
    assert "cat" in top[0].lower()
    assert top[1] in {"espresso", "cup", "coffee mug"}


def test_text_embeddings_normalised_and_semantic(text_encoder):
    texts = ["a photo of a cat", "a picture of a kitten", "a rocket launch into space"]
    emb, truncated = oe.encode_texts(text_encoder, texts)
    assert emb.shape == (3, 384) and emb.dtype == np.float32 and not truncated.any()
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, rtol=1e-5)
    sims = emb @ emb.T
    assert sims[0, 1] > sims[0, 2] + 0.2


def test_text_truncation_is_detected_and_kept_prefix_reported(text_encoder):
    long = " ".join(f"word{i}" for i in range(400))
    emb, truncated = oe.encode_texts(text_encoder, ["short text", long], batch_size=1)
    assert truncated.tolist() == [False, True]
    batch = oe.tokenize_texts(text_encoder.tokenizer, ["short text", long], max_length=32)
    assert batch.input_ids.shape == (2, 32) and batch.truncated.tolist() == [False, True]
    assert batch.n_tokens[1] > 32 and batch.kept[0] == "short text"
    assert long.startswith(batch.kept[1]) and 0 < len(batch.kept[1]) < len(long)
    # the kept prefix re-tokenises to exactly the tokens that were encoded
    again = oe.tokenize_texts(text_encoder.tokenizer, [batch.kept[1]], max_length=32)
    assert not again.truncated[0]
    assert again.input_ids[0].tolist() == batch.input_ids[1].tolist()
    # an input-order result regardless of the length sorting inside encode_texts
    emb2, _ = oe.encode_texts(text_encoder, [long, "short text"], batch_size=1)
    np.testing.assert_allclose(emb2[::-1], emb, rtol=1e-4, atol=1e-5)
