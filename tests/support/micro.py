"""The micro LLaVA preset the fine-tuning tests train: a spec of a few thousand parameters per layer, aligned for a
few steps on 12 images. Its aligned base is built once per test session (``micro_base`` in ``tests/conftest.py``)."""
from kit.finetune.presets import AlignConfig, Preset, TrainConfig
from kit.models.vlm import VLMSpec

MICRO = VLMSpec(vision_hidden=32, vision_layers=1, vision_heads=2, lm_hidden=64, lm_layers=1, lm_heads=2,
                lm_kv_heads=1, lm_intermediate=128)
MICRO_ALIGN = AlignConfig(train=("projector", "lm"), steps=4, batch_size=8, limit_images=12, vision_pretrain_steps=3)
PRESET = Preset(name="micro", spec=MICRO, align=MICRO_ALIGN,
                train=TrainConfig(lr=3e-3, epochs=1.0, batch_size=4, checkpoint_every=2, group=2, max_length=256))
