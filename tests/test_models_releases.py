"""ame.models.releases: PromptKD's released teachers, one registry entry each, found under either
folder spelling or fetched from a mirror (verified, hash recorded)."""

import io
import logging

import pytest
import torch

from ame.fetch import ChecksumError, FetchError, sha256_bytes
from ame.io import read_json
from ame.models.releases import CHECKSUMS, HOSTS, TEACHERS, locate_checkpoint, released_teacher


def test_registry_has_the_eleven_base_to_new_teachers_and_the_imagenet_cross_dataset_one():
    assert len(TEACHERS) == 12
    assert released_teacher("base2new", "Flowers102").artifact.filename == "OxfordFlowers/VLPromptLearner/model-best.pth.tar"
    assert released_teacher("base2new", "DescribableTextures").artifact.filename.startswith("DescribableTextures/")
    assert released_teacher("xd", "ImageNet").artifact.filename == "ImageNet-xd/VLPromptLearner_large/model.pth.tar-20"
    assert all(t.artifact.url is None and t.artifact.sha256 is None for t in TEACHERS.values())
    with pytest.raises(ValueError, match="no teacher for xd/Caltech101"):
        released_teacher("xd", "Caltech101")


def test_missing_teacher_error_names_the_file_where_to_put_it_and_the_three_hosts(tmp_path):
    with pytest.raises(FetchError) as err:
        locate_checkpoint("base2new", "FGVCAircraft", tmp_path / "teacher_model")
    message = str(err.value)
    assert "'FGVCAircraft/VLPromptLearner/model-best.pth.tar'" in message
    assert f"place it at {tmp_path / 'teacher_model' / 'FGVCAircraft/VLPromptLearner/model-best.pth.tar'}" in message
    assert "FGVCaircraft/VLPromptLearner/model-best.pth.tar" in message  # the README's spelling is accepted
    assert all(url in message for _, url in HOSTS)


def _checkpoint_bytes(tag: float) -> bytes:
    buffer = io.BytesIO()
    torch.save({"state_dict": {"w": torch.full((2,), tag)}}, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("dataset, folder", [("StanfordCars", "StandfordCars"), ("FGVCAircraft", "FGVCaircraft")])
def test_the_release_notes_folder_spellings_are_accepted(tmp_path, dataset, folder):
    placed = tmp_path / folder / "VLPromptLearner" / "model-best.pth.tar"
    placed.parent.mkdir(parents=True)
    placed.write_bytes(_checkpoint_bytes(1.0))
    path, digest = locate_checkpoint("base2new", dataset, tmp_path)
    assert path == placed and digest == sha256_bytes(_checkpoint_bytes(1.0))


def test_first_copy_records_and_prints_its_hash_and_later_copies_must_match(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="ame")
    placed = tmp_path / "OxfordPets" / "VLPromptLearner" / "model-best.pth.tar"
    placed.parent.mkdir(parents=True)
    placed.write_bytes(_checkpoint_bytes(1.0))
    locate_checkpoint("base2new", "OxfordPets", tmp_path)
    v1 = sha256_bytes(_checkpoint_bytes(1.0))
    assert v1 in caplog.text
    assert read_json(tmp_path / CHECKSUMS) == {"promptkd-teacher/base2new/OxfordPets": v1}
    placed.write_bytes(_checkpoint_bytes(2.0))
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        locate_checkpoint("base2new", "OxfordPets", tmp_path)
    assert placed.read_bytes() == _checkpoint_bytes(2.0)  # never deleted: it may have been placed by hand
