"""ame.training.contrastive: the miniature backbones' pre-training loss treats identical captions as
the same text (a multi-positive InfoNCE), and captions come from the class name and templates."""

import torch
import torch.nn.functional as F

from ame.evaluate import ZERO_SHOT_TEMPLATE
from ame.training.contrastive import STYLE_TEMPLATES, Captioned, contrastive_loss


def test_images_sharing_a_caption_are_all_positives_for_it():
    torch.manual_seed(0)
    image = F.normalize(torch.randn(3, 8), dim=-1)
    text = F.normalize(torch.randn(3, 8), dim=-1)
    captions = ["a photo of a one.", "a photo of a one.", "a photo of a two."]
    scale = torch.tensor(10.0)
    logits = scale * image @ text.t()
    targets = torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    expected = (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2
    torch.testing.assert_close(contrastive_loss(image, text, captions, scale), expected)
    # With distinct captions it is CLIP's symmetric InfoNCE with the diagonal as targets.
    distinct = ["one", "two", "three"]
    clip = (F.cross_entropy(logits, torch.arange(3)) + F.cross_entropy(logits.t(), torch.arange(3))) / 2
    torch.testing.assert_close(contrastive_loss(image, text, distinct, scale), clip)


class _Images:
    def __init__(self, labels):
        self.labels = labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return torch.zeros(3, 4, 4), self.labels[i]


def test_captions_fill_the_class_name_into_generic_or_the_datasets_style_templates():
    names = [str(i) for i in range(10)]
    data = Captioned(_Images(list(range(10)) * 5), "Digits", names, seed=3)
    captions = [data[i][1] for i in range(len(data))]
    allowed = {t.format(names[i % 10]) for i in range(10) for t in (ZERO_SHOT_TEMPLATE, *STYLE_TEMPLATES["Digits"])}
    assert set(captions) <= allowed and len(set(captions)) > 10  # both kinds of template are drawn
    again = Captioned(_Images(list(range(10)) * 5), "Digits", names, seed=3)
    assert [again[i][1] for i in range(len(again))] == captions  # the seed fixes the draw
