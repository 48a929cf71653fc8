"""RadLASClassifier: evidence-pooling head, evidence maps, finetune modes, strict pretrained loading."""

from __future__ import annotations

import math

import pytest
import torch

from radlas_monai.handlers.checkpoint_io import CheckpointError, StateDictMismatchError
from radlas_monai.networks.classifier import ClassifierOutput, RadLASClassifier, RadLASClassifierLogits
from radlas_monai.networks.classifier_loading import PRETRAIN_COMMAND, encoder_state_dict
from radlas_monai.networks.evidence_pooling import EvidencePoolingHead, attention_to_evidence_maps
from radlas_monai.networks.radlas import RadLAS

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = 32  # 2 x 2 token grid with patch 16
SMALL = {"num_layers": 4, "hidden_size": 48, "num_heads": 2, "mlp_dim": 64}
CLASSES = ["Nodule", "Effusion", "Cardiomegaly"]


def _classifier(**kwargs) -> RadLASClassifier:
    kwargs.setdefault("from_scratch", True)
    backbone = kwargs.pop("backbone_kwargs", SMALL)
    return RadLASClassifier(kwargs.pop("class_names", CLASSES), img_size=SIZE, backbone_kwargs=backbone, **kwargs)


@pytest.fixture()
def pretrain_ckpt(tmp_path):
    torch.manual_seed(1)
    state = RadLAS(img_size=SIZE, **SMALL).state_dict()
    path = tmp_path / "model.pt"
    torch.save(state, path)
    return path, state


def test_head_attention_reference_and_shapes():
    torch.manual_seed(0)
    head = EvidencePoolingHead(num_classes=2, hidden_size=4, evidence_eps=0.1, beta_init=1.0)
    tokens, weight, glob = torch.randn(3, 5, 4), torch.rand(3, 5), torch.randn(3, 4)
    logits, attention = head(tokens, weight, glob)
    assert logits.shape == (3, 2) and attention.shape == (3, 2, 5)
    # hand-written reference of the documented formula
    scores = torch.einsum("kd,bnd->bkn", head.queries, tokens) / 2.0 + torch.log(weight + 0.1)[:, None, :]
    expected_attention = torch.softmax(scores, dim=-1)
    torch.testing.assert_close(attention, expected_attention)
    pooled = torch.einsum("bkn,bnd->bkd", expected_attention, tokens)
    features = torch.cat([pooled, glob[:, None].expand(-1, 2, -1)], dim=-1)
    torch.testing.assert_close(logits, (features * head.weight).sum(-1) + head.bias)
    torch.testing.assert_close(attention.sum(-1), torch.ones(3, 2))


def test_lesion_bias_moves_attention_to_lesion_tokens():
    head = EvidencePoolingHead(num_classes=1, hidden_size=4, beta_init=1.0)
    with torch.no_grad():
        head.queries.zero_()  # content-blind: attention follows the lesion prior alone
    weight = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    _, attention = head(torch.randn(1, 4, 4), weight, torch.zeros(1, 4))
    assert attention[0, 0].argmax() == 2 and attention[0, 0, 2] > 0.9
    with torch.no_grad():
        head.lesion_bias.zero_()
    _, flat = head(torch.randn(1, 4, 4), weight, torch.zeros(1, 4))
    torch.testing.assert_close(flat, torch.full((1, 1, 4), 0.25))


def test_evidence_maps_max_normalised_and_proportional():
    attention = torch.tensor([[[0.5, 0.25, 0.25, 0.0], [0.25, 0.25, 0.25, 0.25]]])
    maps = attention_to_evidence_maps(attention, (2, 2), (8, 8))
    assert maps.shape == (1, 2, 8, 8)
    assert maps.min() >= 0 and torch.allclose(maps.amax(dim=(-1, -2)), torch.ones(1, 2))
    assert maps[0, 0, 0, 0] == 1.0 and maps[0, 0, 0, 7] == pytest.approx(0.5)  # half the top token's attention
    torch.testing.assert_close(maps[0, 1], torch.ones(8, 8))  # uniform attention -> uniform evidence
    with pytest.raises(ValueError, match="token grid"):
        attention_to_evidence_maps(attention, (3, 2), (8, 8))


@pytest.mark.parametrize("multi_label", [True, False])
def test_forward_output_contract(multi_label):
    torch.manual_seed(0)
    net = _classifier(multi_label=multi_label).eval()
    image = torch.rand(2, 1, SIZE, SIZE)
    out = net(image)
    assert isinstance(out, ClassifierOutput) and out.class_names == tuple(CLASSES)
    assert out.logits.shape == (2, 3) and out.evidence_maps.shape == (2, 3, SIZE, SIZE)
    assert out.lesion_map.shape == (2, 1, SIZE, SIZE) and 0 <= out.lesion_map.min() <= out.lesion_map.max() <= 1
    assert out.evidence_maps.min() >= 0 and torch.allclose(out.evidence_maps.amax((-1, -2)), torch.ones(2, 3))
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(2, 3))
    probs = out.probabilities()
    if multi_label:
        torch.testing.assert_close(probs, torch.sigmoid(out.logits))
    else:
        torch.testing.assert_close(probs.sum(1), torch.ones(2))
    assert net(image, evidence=False).evidence_maps is None
    with pytest.raises(ValueError, match="expects images"):
        net(torch.rand(2, 1, SIZE, SIZE + 16))


def test_logits_wrapper_loads_bare_classifier_state_and_traces():
    torch.manual_seed(0)
    trained = _classifier().eval()
    wrapper = RadLASClassifierLogits(_classifier()).eval()
    wrapper.load_state_dict(trained.state_dict())
    image = torch.rand(1, 1, SIZE, SIZE)
    torch.testing.assert_close(wrapper(image), trained(image).logits)
    traced = torch.jit.trace(wrapper, image)
    torch.testing.assert_close(traced(image), wrapper(image))


@pytest.mark.parametrize(
    "mode, trainable_encoder",
    [
        ["linear_probe", set()],
        ["partial", {"blocks.2", "blocks.3", "norm"}],
        ["full", {"patch_embed", "blocks.0", "blocks.1", "blocks.2", "blocks.3", "norm"}],
    ],
)
def test_finetune_modes_freeze_and_keep_frozen_parts_in_eval(mode, trainable_encoder):
    net = _classifier(finetune_mode=mode).train()
    prefix = "backbone.encoder."
    trainable = {
        ".".join(n[len(prefix) :].split(".")[:2]) if ".blocks." in n else n[len(prefix) :].split(".")[0]
        for n, p in net.named_parameters()
        if p.requires_grad and n.startswith(prefix)
    }
    assert trainable == trainable_encoder
    assert all(p.requires_grad for p in net.head.parameters())
    others = [n for n, p in net.named_parameters() if p.requires_grad and not n.startswith((prefix, "head."))]
    assert not others, f"decoder/grounding/projector must stay frozen: {others}"
    assert not net.backbone.decoder.training and not net.backbone.grounding_head.training
    if mode == "partial":
        assert net.backbone.encoder.blocks[3].training and not net.backbone.encoder.blocks[0].training
    out = net(torch.rand(2, 1, SIZE, SIZE), evidence=False)
    out.logits.sum().backward()
    grads = [n for n, p in net.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0]
    assert any(n.startswith("head.") for n in grads)
    assert all(n.startswith(("head.", prefix)) for n in grads)


def test_loads_full_pretrain_checkpoint_and_wrapped_training_checkpoint(pretrain_ckpt, tmp_path):
    path, state = pretrain_ckpt
    for source in (path, tmp_path / "checkpoint_best.pt"):
        if source != path:
            torch.save({"network": {"module." + k: v for k, v in state.items()}, "meta": {"epoch": 1}}, source)
        net = _classifier(pretrained_ckpt=source, from_scratch=False)
        for key, value in state.items():
            assert torch.equal(net.backbone.state_dict()[key], value), key


def test_missing_checkpoint_names_path_and_command(tmp_path):
    missing = tmp_path / "none" / "model.pt"
    with pytest.raises(CheckpointError, match="pretrain checkpoint not found") as err:
        _classifier(pretrained_ckpt=missing, from_scratch=False)
    assert str(missing) in str(err.value) and PRETRAIN_COMMAND in str(err.value)
    with pytest.raises(ValueError, match="from_scratch=True"):
        _classifier(pretrained_ckpt=None, from_scratch=False)


def test_mismatched_checkpoint_names_the_keys(pretrain_ckpt, tmp_path):
    path, state = pretrain_ckpt
    with pytest.raises(StateDictMismatchError, match="shape mismatch") as err:
        RadLASClassifier(CLASSES, img_size=SIZE, pretrained_ckpt=path, backbone_kwargs={**SMALL, "hidden_size": 64})
    assert "encoder.patch_embed" in str(err.value) and PRETRAIN_COMMAND in str(err.value)
    partial = {k: v for k, v in state.items() if not k.startswith("grounding_head.")}
    torch.save({**partial, "extra.weight": torch.zeros(1)}, tmp_path / "partial.pt")
    with pytest.raises(StateDictMismatchError) as err:
        _classifier(pretrained_ckpt=tmp_path / "partial.pt", from_scratch=False)
    assert err.value.missing and all(k.startswith("grounding_head.") for k in err.value.missing)
    assert err.value.unexpected == ["extra.weight"] and "pretrained_parts='encoder'" in str(err.value)


def test_encoder_only_parts_load_bare_and_vit_autoenc_encoders(pretrain_ckpt, tmp_path):
    path, state = pretrain_ckpt
    encoder = {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
    torch.save(encoder, tmp_path / "encoder.pt")
    with pytest.raises(StateDictMismatchError):  # "all" refuses an encoder-only file
        _classifier(pretrained_ckpt=tmp_path / "encoder.pt", from_scratch=False)
    net = _classifier(pretrained_ckpt=tmp_path / "encoder.pt", from_scratch=False, pretrained_parts="encoder")
    assert all(torch.equal(net.backbone.encoder.state_dict()[k], v) for k, v in encoder.items())
    from radlas_monai.baselines import build_vit_autoenc

    vae = build_vit_autoenc("tiny", img_size=SIZE, **SMALL).state_dict()
    converted = encoder_state_dict(vae)
    assert not any(k.startswith(("patch_embedding.", "conv3d_transpose")) for k in converted)
    torch.save(vae, tmp_path / "vae.pt")
    with pytest.raises(StateDictMismatchError, match="qkv.bias"):  # ViTAutoEnc's blocks have no qkv bias
        _classifier(pretrained_ckpt=tmp_path / "vae.pt", from_scratch=False, pretrained_parts="encoder")
    no_bias = {**SMALL, "qkv_bias": False}
    net = _classifier(
        pretrained_ckpt=tmp_path / "vae.pt", from_scratch=False, pretrained_parts="encoder", backbone_kwargs=no_bias
    )
    assert torch.equal(net.backbone.encoder.patch_embed.position_embeddings, vae["patch_embedding.position_embeddings"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        [{"finetune_mode": "head_only"}, "finetune_mode"],
        [{"pretrained_parts": "decoder"}, "pretrained_parts"],
        [{"class_names": ["A", "A"]}, "unique"],
        [{"class_names": "Nodule"}, "list of names"],
        [{"class_names": ["A"], "multi_label": False}, "at least 2"],
        [{"finetune_mode": "partial", "trainable_blocks": 9}, "trainable_blocks"],
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _classifier(**kwargs)


def test_evidence_eps_bounds_the_prior():
    head = EvidencePoolingHead(num_classes=1, hidden_size=2, evidence_eps=1e-2)
    with torch.no_grad():
        head.queries.zero_()
    _, attention = head(torch.zeros(1, 2, 2), torch.tensor([[0.0, 1.0]]), torch.zeros(1, 2))
    ratio = attention[0, 0, 0] / attention[0, 0, 1]
    assert ratio.item() == pytest.approx(1e-2 / (1 + 1e-2), rel=1e-4)
    assert math.isfinite(ratio.item())
