"""`Config`, the root of the one schema: the top-level keys and one field per section, in pipeline order."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from s3ft.config.base import Method, Section
from s3ft.config.evaluate import CacheConfig, EvaluateConfig, ReportConfig
from s3ft.config.generation import GenerateConfig, JudgeConfig, ParaphraseConfig, ResampleConfig, SelectConfig
from s3ft.config.inputs import DataConfig, ModelConfig
from s3ft.config.train import TrainConfig


class Config(Section):
    run_dir: str = "runs/default"
    """Where every stage writes its folder (a relative path: as the intro above says, against the config file's folder
    when it starts with `./` or `../` or exists there, else against the working directory)."""
    method: list[Method] = Field(default_factory=lambda: ["s3ft"], min_length=1)
    """One method or a list: each builds its training set from the same generations and verdicts."""
    seed: int = Field(default=0, ge=0)
    """Seed for training (data order, LoRA init)."""
    model: ModelConfig
    data: DataConfig
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    resample: ResampleConfig = Field(default_factory=ResampleConfig)
    paraphrase: ParaphraseConfig = Field(default_factory=ParaphraseConfig)
    select: SelectConfig = Field(default_factory=SelectConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)

    def curve_points(self) -> int:
        """Snapshots each training run saves for learning curves (0: this run records none)."""
        c = self.evaluate.curve
        return c.points if c is not None and (c.seeds is None or self.seed in c.seeds) else 0

    @field_validator("method", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("method")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(v))
