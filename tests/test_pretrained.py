"""gmgan.pretrained and the notebooks' rule for l_P's VGG19 (gmgan.experiments): the ImageNet weights
are used when cached, downloaded (hash-checked) where the server answers, and refused with the ways
out where it does not; only the teach preset falls back to a random VGG19. The "server" is a real
HTTP server on 127.0.0.1 standing in for download.pytorch.org. Weights files are read by
load_vgg19_features (checked against torchvision's own state dict layouts), and bad ones are
refused naming the file."""
from __future__ import annotations

import functools
import hashlib
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

import gmgan.experiments as ex
import gmgan.pretrained as pretrained
from gmgan import online
from gmgan.errors import CheckpointError

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.fixture
def weights_server(tmp_path, monkeypatch):
    """Serves a fake weights file whose name carries the sha256 prefix, as torchvision's do."""
    body = b"not really vgg19, but the downloader only checks the hash" * 100
    prefix = hashlib.sha256(body).hexdigest()[:8]
    served = tmp_path / "srv"
    served.mkdir()
    (served / f"vgg19-{prefix}.pth").write_bytes(body)
    (served / "vgg19-00000000.pth").write_bytes(body)  # a file whose hash does not match its name
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.delenv("GMGAN_OFFLINE", raising=False)
    online.clear_cache()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield base, prefix, body
    server.shutdown()
    server.server_close()


def test_offline_refusal_says_what_is_missing_and_how_to_fix_it(torch_home, monkeypatch):
    monkeypatch.setenv("GMGAN_OFFLINE", "1")
    assert not pretrained.vgg19_cached() and ex.perceptual_weights_available(download=True) is False
    with pytest.raises(pretrained.WeightsUnavailable) as exc:
        pretrained.fetch_vgg19()
    text = str(exc.value)
    for needed in (str(torch_home / "vgg19-dcbb9e9d.pth"), "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
                   "GMGAN_OFFLINE is set", "TORCH_HOME", "perceptual_weights=/path/to/", "perceptual_weights=random"):
        assert needed in text
    # the notebooks' rule: teach falls back (and can say so), paper and colab refuse
    assert ex.default_perceptual_weights() == "random"
    assert ex.default_perceptual_weights("teach", verbose=False) == "random"
    for preset in ("paper", "colab"):
        with pytest.raises(pretrained.WeightsUnavailable, match="perceptual_weights=random"):
            ex.default_perceptual_weights(preset)
    pretrained.require_perceptual_weights("random")  # explicit: allowed
    pretrained.require_perceptual_weights("none")
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        pretrained.require_perceptual_weights(str(torch_home / "mine.pth"))


def test_teach_says_when_it_falls_back(torch_home, monkeypatch, capsys):
    monkeypatch.setenv("GMGAN_OFFLINE", "1")
    assert ex.default_perceptual_weights("teach", verbose=True) == "random"
    assert "randomly initialised VGG19 (seeded)" in capsys.readouterr().out


def test_cached_weights_are_used_without_network(torch_home, monkeypatch):
    monkeypatch.setenv("GMGAN_OFFLINE", "1")
    torch_home.mkdir(parents=True)
    (torch_home / "vgg19-dcbb9e9d.pth").write_bytes(b"")
    assert ex.perceptual_weights_available() and ex.default_perceptual_weights("paper") == "imagenet"
    pretrained.require_perceptual_weights("imagenet")


def test_download_where_the_server_answers_and_hash_is_checked(torch_home, weights_server, monkeypatch):
    base, prefix, body = weights_server
    monkeypatch.setattr(pretrained, "vgg19_url", lambda: f"{base}/vgg19-{prefix}.pth")
    assert not pretrained.vgg19_cached()
    assert ex.default_perceptual_weights("colab") == "imagenet"
    assert (torch_home / f"vgg19-{prefix}.pth").read_bytes() == body
    # a file whose content does not match the hash in its name is refused, and nothing is left
    monkeypatch.setattr(pretrained, "vgg19_url", lambda: f"{base}/vgg19-00000000.pth")
    with pytest.raises(pretrained.WeightsUnavailable, match="the download failed"):
        pretrained.fetch_vgg19(progress=False)
    assert not (torch_home / "vgg19-00000000.pth").exists()


def test_pi_available_without_the_network(monkeypatch, tmp_path):
    """Offline and without NRQM_model.mat, PI is unavailable, and saying so touches no network."""
    pytest.importorskip("pyiqa")
    from gmgan import metrics

    monkeypatch.setenv("GMGAN_OFFLINE", "1")
    monkeypatch.setenv("GMGAN_DATA", str(tmp_path))
    monkeypatch.setattr(online, "_endpoint", lambda url: pytest.fail("the network was asked"))
    monkeypatch.setattr(metrics, "_find_model_file", lambda name, explicit: None)
    assert metrics.pi_available() is False
    monkeypatch.setattr(metrics, "_find_model_file", lambda name, explicit: tmp_path / name)
    assert metrics.pi_available() is True


# ---------------------------------------------------------------------------------------------
# load_vgg19_features: the one way VGG19 weights are read
# ---------------------------------------------------------------------------------------------

class _Payload:
    """Unpickling this would create a file: proof that a pickle ran code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def first_convs():
    """torchvision's vgg19 features up to conv1_2 (4 modules), with real storage."""
    torchvision = pytest.importorskip("torchvision")
    with torch.device("meta"):  # no time spent on initialising the 143 M parameters
        features = torchvision.models.vgg19(weights=None).features[:4]
    return features.to_empty(device="cpu")


def test_load_vgg19_features_reads_torchvision_layouts(first_convs, tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    state = {k: torch.randn_like(v) for k, v in first_convs.state_dict().items()}
    torch.save({f"features.{k}": v for k, v in state.items()}, tmp_path / "full.pth")
    save_file(state, str(tmp_path / "features.safetensors"))
    for name in ("full.pth", "features.safetensors"):
        pretrained.load_vgg19_features(first_convs, tmp_path / name)
        for key, value in first_convs.state_dict().items():
            assert torch.equal(value, state[key]), (name, key)


def test_load_vgg19_features_refuses_bad_files_naming_them(first_convs, tmp_path):
    (tmp_path / "text.pth").write_bytes(b"not a pickle at all")
    (tmp_path / "text.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{bad")
    torch.save([torch.zeros(3)], tmp_path / "list.pth")
    marker = tmp_path / "payload-ran"
    torch.save({"0.weight": _Payload(marker)}, tmp_path / "unsafe.pth")
    for name, why in (("text.pth", "cannot read VGG19 weights"),
                      ("text.safetensors", "cannot read VGG19 weights"),
                      ("list.pth", "expected a state dict"),
                      ("unsafe.pth", "cannot read VGG19 weights")):
        with pytest.raises(CheckpointError, match=why) as info:
            pretrained.load_vgg19_features(first_convs, tmp_path / name)
        assert str(tmp_path / name) in str(info.value)
    assert not marker.exists()  # the pickle's code never ran
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        pretrained.load_vgg19_features(first_convs, tmp_path / "nowhere.pth")
    with pytest.raises(TypeError, match="weights must be"):
        pretrained.load_vgg19_features(first_convs, 3)


def test_load_vgg19_features_offline_and_uncached_never_downloads(first_convs, torch_home,
                                                                  monkeypatch):
    monkeypatch.setenv("GMGAN_OFFLINE", "1")
    monkeypatch.setattr(online, "_endpoint", lambda url: pytest.fail("the network was asked"))
    monkeypatch.setattr(torch.hub, "download_url_to_file",
                        lambda *a, **k: pytest.fail("a download was attempted"))
    with pytest.raises(pretrained.WeightsUnavailable, match="GMGAN_OFFLINE is set") as info:
        pretrained.load_vgg19_features(first_convs, "imagenet")
    assert str(torch_home / "vgg19-dcbb9e9d.pth") in str(info.value)
    # the message speaks PerceptualLoss's language, the trainer's check its own
    assert "PerceptualLoss(weights=None)" in str(info.value)
    with pytest.raises(pretrained.WeightsUnavailable, match="perceptual_weights=random"):
        pretrained.fetch_vgg19()
