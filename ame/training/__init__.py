"""Training: the one engine (`engine.fit`) and the three things it trains, each a `Trainable` —
contrastive pre-training of the miniature's backbones, teacher prompt tuning, and distillation —
plus PromptKD's optimiser and schedule and the teacher-cache format the distillation reads."""
