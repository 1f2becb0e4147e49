"""ame.evaluate: PromptKD's Base / New / HM (each half classified among its own classes only) and
cross-dataset accuracy (all classes)."""

import pytest
import torch

from ame.evaluate import scores, subset_accuracy

# Four classes, unit text vectors; base = {0, 1}, new = {2, 3}.
TEXT = torch.eye(4)


def _images(pairs):
    """Features pointing at class `towards`, labelled `label`: (features, labels)."""
    feats = torch.stack([TEXT[towards] + 0.1 * TEXT[(towards + 1) % 4] for _, towards in pairs])
    return feats, torch.tensor([label for label, _ in pairs])


def test_each_half_is_classified_among_its_own_classes_only():
    # The two base images lie nearest to new class 2: wrong among all classes, right among the
    # base classes, where only the base directions compete.
    feats = torch.stack([TEXT[2] + 0.2 * TEXT[0], TEXT[2] + 0.2 * TEXT[1], TEXT[3], TEXT[2]])
    labels = torch.tensor([0, 1, 3, 3])
    assert subset_accuracy(feats, labels, TEXT, [0, 1]) == 100.0  # 2 of 2 base images right among base classes
    assert subset_accuracy(feats, labels, TEXT, [2, 3]) == 50.0   # the last image goes to class 2
    assert subset_accuracy(feats, labels, TEXT, [0, 1, 2, 3]) == 25.0


def test_base_to_new_scores_are_the_halves_and_their_harmonic_mean():
    feats, labels = _images([(0, 0), (1, 1), (1, 0), (1, 1), (2, 2), (3, 2)])
    result = scores(feats, labels, TEXT, "base2new", [0, 1], [2, 3])
    assert result == {"base": 75.0, "new": 50.0, "hm": 60.0, "accuracy": None}  # 2*75*50/125


def test_cross_dataset_scores_are_all_class_accuracy_only():
    feats, labels = _images([(0, 0), (1, 1), (2, 3), (3, 3)])
    assert scores(feats, labels, TEXT, "xd", [0, 1, 2, 3], []) == {"base": None, "new": None, "hm": None,
                                                                    "accuracy": 75.0}


def test_no_images_of_the_requested_classes_is_an_error_not_a_zero():
    feats, labels = _images([(0, 0)])
    with pytest.raises(ValueError, match="no evaluation images"):
        subset_accuracy(feats, labels, TEXT, [2, 3])
