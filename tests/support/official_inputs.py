"""Ports of the official mmSSR input builders, for tests, written out plainly from github.com/lyumengyao/mmssr:
``preprocess_qwen`` (``llava/eval/model_ss.py``, the code path the official inference runs),
``tokenizer_image_token`` (``llava/mm_utils.py``, imported there but not called) and the image preprocessing of
``SigLipImageProcessor.preprocess`` (``llava/model/multimodal_encoder/siglip_encoder.py``)."""
from functools import partial, reduce

import numpy as np

from kit.mmssr.prompts import SYSTEM_PROMPT
from kit.mmssr.tokens import IMAGE_TOKEN_INDEX


def siglip_preprocess_port(image, size, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)):
    """The official base view as a (1, 3, H, W) tensor: RGB, bicubic resize to ``size`` (h, w), /255, normalise."""
    import torch
    from transformers.image_transforms import convert_to_rgb, normalize, rescale, resize, to_channel_dimension_format
    from transformers.image_utils import ChannelDimension, PILImageResampling, to_numpy_array

    first = ChannelDimension.FIRST
    steps = [convert_to_rgb, to_numpy_array,
             partial(resize, size=tuple(size), resample=PILImageResampling.BICUBIC, data_format=first),
             partial(rescale, scale=1 / 255, data_format=first),
             partial(normalize, mean=mean, std=std, data_format=first),
             partial(to_channel_dimension_format, channel_dim=first, input_channel_dim=first)]
    return torch.tensor(np.stack(reduce(lambda x, f: [*map(f, x)], steps, [image])))


def preprocess_qwen_port(qs, tokenizer, system_message=SYSTEM_PROMPT):
    """The official ``preprocess_qwen`` for [user qs, assistant None] with has_image=True, written out plainly.

    Deviation: ``<|im_start|>``/``<|im_end|>`` by name (officially ``tokenizer.additional_special_tokens_ids``,
    which is Qwen2's pair and does not exist on transformers 5 tokenizers).
    """
    im_start = tokenizer.convert_tokens_to_ids("<|im_start|>")
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    nl_tokens = tokenizer("\n").input_ids
    input_id = [im_start] + tokenizer("system").input_ids + nl_tokens
    input_id += tokenizer(system_message).input_ids + [im_end] + nl_tokens
    # the user turn
    if "<image>" in qs:
        turn = tokenizer("<|im_start|>user").input_ids + nl_tokens
        texts = qs.split("<image>")
        for i, text in enumerate(texts):
            turn += tokenizer(text).input_ids
            if i < len(texts) - 1:
                turn += [IMAGE_TOKEN_INDEX] + nl_tokens
        turn += [im_end] + nl_tokens
    else:
        turn = tokenizer("<|im_start|>user").input_ids + nl_tokens + tokenizer(qs).input_ids + [im_end] + nl_tokens
    input_id += turn
    # the open assistant turn (value None)
    input_id += tokenizer("<|im_start|>assistant").input_ids + nl_tokens
    return input_id


def tokenizer_image_token_port(prompt, tokenizer, bos_token_id=None):
    """``llava/mm_utils.py`` ``tokenizer_image_token``, which the official script imports but does not call.

    ``bos_token_id`` None as for Qwen2's tokenizer (SmolLM2's BOS is ``<|im_start|>``, with which the function
    would double the image id and drop the first token after it).
    """
    chunks = [tokenizer(chunk).input_ids for chunk in prompt.split("<image>")]
    out, offset = [], 0
    if chunks and chunks[0] and chunks[0][0] == bos_token_id:
        offset = 1
        out.append(chunks[0][0])
    for i, chunk in enumerate(chunks):
        if i:
            out += [IMAGE_TOKEN_INDEX] * (offset + 1)
        out += chunk[offset:]
    return out
