"""A released PromptSRC checkpoint maps onto our ViT-L/14 teacher tensor for tensor, and the loaded
teacher computes what PromptKD's teacher computes from the same raw tensors."""

import os

import pytest
import torch

from ame.cli import main
from ame.models import promptkd
from ame.models.clip import activation_class_names, create_clip, get_tokenizer
from ame.models.promptkd import TOKEN_EMBEDDING, CheckpointError, convert, load_converted, read_checkpoint
from ame.models.teacher import Teacher
from tests import promptkd_fixtures as fx


@pytest.fixture(scope="module")
def vit_l_teacher():
    """The paper teacher at real shapes, on the meta device (no memory, no weights)."""
    tokenizer = get_tokenizer("ViT-L-14-quickgelu")
    with torch.device("meta"):
        return Teacher(create_clip("ViT-L-14-quickgelu"), tokenizer, prompt_tokens=4, prompt_depth=9)


@pytest.fixture()
def released_keys():
    return fx.promptkd_shapes(fx.VIT_L14, depth=9)


def test_paper_teacher_is_vit_l14_with_quickgelu_and_9_x_4_prompts(vit_l_teacher):
    assert activation_class_names(vit_l_teacher.clip) == {"QuickGELU"}
    assert vit_l_teacher.vision_prompts.tokens.shape == (9, 4, 1024)
    assert vit_l_teacher.text_prompts.tokens.shape == (9, 4, 768)
    assert vit_l_teacher.clip.visual.positional_embedding.shape == (257, 1024)


def test_every_released_tensor_is_consumed_or_ignored_and_the_teacher_is_complete(vit_l_teacher, released_keys):
    conversion = convert(fx.meta_state(released_keys), vit_l_teacher)
    teacher_shapes = {k: tuple(v.shape) for k, v in vit_l_teacher.state_dict().items()}
    assert set(conversion.state) == set(teacher_shapes) - {TOKEN_EMBEDDING}
    assert {k: tuple(v.shape) for k, v in conversion.state.items()} == {
        k: s for k, s in teacher_shapes.items() if k != TOKEN_EMBEDDING}
    assert conversion.consumed + len(conversion.ignored) == len(released_keys)
    assert conversion.unknown == [] and conversion.kept == [TOKEN_EMBEDDING]


def test_ignored_tensors_are_token_buffers_and_promptsrcs_zero_shot_tower(vit_l_teacher, released_keys):
    conversion = convert(fx.meta_state(released_keys), vit_l_teacher)
    assert set(conversion.ignored) == {k for k in released_keys if k.startswith("prompt_learner.")} - {
        "prompt_learner.ctx"}
    assert all(reason for reason in conversion.ignored.values())
    assert conversion.summary()["ignored"] == {"prompt_learner.ZS_image_encoder.": 24 * 12 + 8,
                                               "prompt_learner.token_prefix": 1, "prompt_learner.token_suffix": 1}


def test_prompt_layers_are_stacked_in_layer_order():
    assert promptkd.slot_for("prompt_learner.ctx") == promptkd.Slot("text_prompts.tokens", 0)
    assert promptkd.slot_for("image_encoder.VPT") == promptkd.Slot("vision_prompts.tokens", 0)
    assert promptkd.slot_for("image_encoder.transformer.resblocks.8.VPT_shallow") == promptkd.Slot(
        "vision_prompts.tokens", 8)
    assert promptkd.slot_for("text_encoder.transformer.resblocks.3.VPT_shallow") == promptkd.Slot(
        "text_prompts.tokens", 3)
    assert promptkd.slot_for("text_encoder.text_projection") == promptkd.Slot("clip.text_projection")
    assert promptkd.slot_for("image_encoder.transformer.resblocks.23.mlp.c_proj.bias") == promptkd.Slot(
        "clip.visual.transformer.resblocks.23.mlp.c_proj.bias")


def test_an_unknown_key_is_an_error_naming_it_unless_allowed(vit_l_teacher, released_keys):
    state = fx.meta_state(released_keys) | {"prompt_learner.meta_net.weight": torch.empty(3, device="meta")}
    with pytest.raises(CheckpointError, match=r"'prompt_learner\.meta_net\.weight'.*dump-checkpoint.*--allow-unknown-keys"):
        convert(state, vit_l_teacher, where="ckpt.pth")
    conversion = convert(state, vit_l_teacher, allow_unknown_keys=True)
    assert conversion.unknown == ["prompt_learner.meta_net.weight"]


def test_a_shape_mismatch_names_the_key_and_both_shapes(vit_l_teacher, released_keys):
    state = fx.meta_state(released_keys)
    state["image_encoder.proj"] = torch.empty(1024, 512, device="meta")
    with pytest.raises(CheckpointError, match=r"'image_encoder\.proj' -> clip\.visual\.proj: expected shape "
                                              r"\(1024, 768\), found \(1024, 512\)"):
        convert(state, vit_l_teacher, allow_unknown_keys=True)


def test_prompts_deeper_than_the_teacher_are_an_error_pointing_at_prompt_depth(vit_l_teacher):
    state = fx.meta_state(fx.promptkd_shapes(fx.VIT_L14, depth=12))
    with pytest.raises(CheckpointError, match=r"resblocks\.9\.VPT_shallow.*teacher\.prompt_depth"):
        convert(state, vit_l_teacher, allow_unknown_keys=True)


def test_missing_prompt_layers_are_an_error_even_when_unknown_keys_are_allowed(vit_l_teacher, released_keys):
    del released_keys["text_encoder.transformer.resblocks.8.VPT_shallow"]
    with pytest.raises(CheckpointError, match=r"'text_encoder\.transformer\.resblocks\.8\.VPT_shallow'"):
        convert(fx.meta_state(released_keys), vit_l_teacher, allow_unknown_keys=True)


def test_a_missing_backbone_tensor_is_an_error_or_keeps_the_backbone_weight_when_allowed(vit_l_teacher, released_keys):
    del released_keys["text_encoder.ln_final.weight"]
    with pytest.raises(CheckpointError, match=r"'text_encoder\.ln_final\.weight'"):
        convert(fx.meta_state(released_keys), vit_l_teacher)
    conversion = convert(fx.meta_state(released_keys), vit_l_teacher, allow_unknown_keys=True)
    assert set(conversion.kept) == {"clip.ln_final.weight", TOKEN_EMBEDDING}


# ------------------------------------------------------------------------------ reading the file

class _DasslScheduler:
    """Stands for the Dassl/torch objects a real checkpoint pickles (not importable on load)."""

    def __init__(self):
        self.successor = {"T_max": 20}
        self.last_epoch = 19


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _dassl_file(tmp_path, state, **extra):
    path = tmp_path / "model-best.pth.tar"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 20,
                "optimizer": {"state": {}, "param_groups": [{"lr": 0.005}]},
                "scheduler": _DasslScheduler(), "val_result": 83.2, **extra}, path)
    return path


def test_dassl_checkpoint_round_trips_with_module_prefixes_stripped(tmp_path):
    state = {"prompt_learner.ctx": torch.randn(4, 8), "logit_scale": torch.tensor(4.6)}
    checkpoint = read_checkpoint(_dassl_file(tmp_path, state))
    assert checkpoint["epoch"] == 20 and checkpoint["val_result"] == 83.2
    tensors = promptkd.checkpoint_state(checkpoint)
    assert set(tensors) == set(state)
    torch.testing.assert_close(tensors["prompt_learner.ctx"], state["prompt_learner.ctx"])


def test_reading_a_checkpoint_executes_no_pickled_code(tmp_path):
    marker = tmp_path / "pwned"
    path = _dassl_file(tmp_path, {"logit_scale": torch.tensor(4.6)}, extra=_Exploit(marker))
    checkpoint = read_checkpoint(path)
    assert not marker.exists()
    assert "system" in repr(checkpoint["extra"])


def test_dump_checkpoint_lists_entries_shapes_dtypes_and_targets(tmp_path, capsys):
    state = {"prompt_learner.ctx": torch.zeros(4, 8, dtype=torch.float16),
             "prompt_learner.token_prefix": torch.zeros(3, 1, 8),
             "image_encoder.transformer.resblocks.2.VPT_shallow": torch.zeros(4, 16),
             "something.else": torch.zeros(2)}
    main(["dump-checkpoint", str(_dassl_file(tmp_path, state))])
    out = capsys.readouterr().out
    assert "epoch: 20" in out and "scheduler:" in out
    assert "prompt_learner.ctx" in out and "(4, 8)" in out and "float16" in out and "text_prompts.tokens[0]" in out
    assert "vision_prompts.tokens[2]" in out
    assert "ignored" in out and "UNKNOWN" in out


# ---------------------------------------------------------------------- numerics at reduced width

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    arch = fx.register_tiny_config(tmp_path_factory.mktemp("configs"))
    torch.manual_seed(1)
    clip = create_clip(arch)
    tokenizer = get_tokenizer(arch)
    teacher = Teacher(clip, tokenizer, prompt_tokens=fx.N_CTX, prompt_depth=fx.TINY_DEPTH, ctx_init=fx.CTX_INIT)
    state = fx.random_state(fx.promptkd_shapes(fx.TINY, depth=fx.TINY_DEPTH, n_cls=5))
    return teacher, tokenizer, state


def test_loaded_teacher_logits_match_promptkd_computed_from_the_raw_tensors(tiny):
    teacher, tokenizer, state = tiny
    conversion = convert(state, teacher)
    load_converted(teacher.eval(), conversion.state, conversion.kept)
    images = torch.randn(3, 3, 28, 28, generator=torch.Generator().manual_seed(2))
    names = ["tabby_cat", "golden retriever", "owl", "red fox", "axolotl"]
    with torch.no_grad():
        ours = 100 * teacher.encode_image(images) @ teacher.encode_text(names).t()
        expected = fx.reference_logits(state, teacher.clip.token_embedding.weight, tokenizer, images, names)
    torch.testing.assert_close(ours, expected, atol=2e-4, rtol=1e-4)
    assert ours.std() > 1.0  # the logits are informative, not a constant


def test_a_half_precision_checkpoint_loads_into_the_float32_teacher(tiny):
    teacher, _, state = tiny
    # PromptSRC's fp16 run: matrices and ctx in half precision, VPT prompts and LayerNorms in float32
    half = {k: v.half() if v.dim() == 2 and "VPT" not in k else v for k, v in state.items()}
    conversion = convert(half, teacher)
    assert conversion.state["text_prompts.tokens"].dtype == torch.float32  # fp16 ctx stacked with fp32 VPTs
    load_converted(teacher, conversion.state, conversion.kept)
    assert teacher.clip.visual.proj.dtype == torch.float32
    torch.testing.assert_close(teacher.text_prompts.tokens[0], half["prompt_learner.ctx"].float())
    torch.testing.assert_close(teacher.clip.visual.proj, half["image_encoder.proj"].float())
