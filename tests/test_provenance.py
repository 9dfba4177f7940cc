"""mqar.provenance.describe_device: the device line every run and benchmark records."""

from types import SimpleNamespace

import pytest
import torch

from mqar.provenance import describe_device


def test_cpu_device_names_machine_and_threads():
    assert describe_device("cpu").startswith("cpu (")
    assert f"{torch.get_num_threads()} threads" in describe_device("cpu")


@pytest.mark.parametrize(("uuid", "expected"), [
    ("52b0c693-a3d5-f989-2ab8-cda89f0e8b18", "cuda:1 (NVIDIA H200, GPU-52b0c693)"),
    ("", "cuda:1 (NVIDIA H200)"),  # a build whose properties carry no UUID
])
def test_gpu_device_names_the_physical_gpu(monkeypatch, uuid, expected):
    # Two Ray workers on two GPUs both see theirs as cuda:0, so the UUID's first block is what tells them apart.
    seen = []

    def properties(index):
        seen.append(index)
        return SimpleNamespace(name="NVIDIA H200", uuid=uuid)

    monkeypatch.setattr(torch.cuda, "get_device_properties", properties)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    assert describe_device("cuda:1") == expected
    assert describe_device("cuda") == expected  # the current device
    assert seen == [1, 1]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_real_gpu_description_carries_its_uuid():
    import re

    description = describe_device("cuda:0")
    assert re.fullmatch(r"cuda:0 \(.+, GPU-[0-9a-f]{8}\)", description), description
    assert str(torch.cuda.get_device_properties(0).uuid).startswith(description[-9:-1])
