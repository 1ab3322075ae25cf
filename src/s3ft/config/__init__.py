"""The one configuration schema. Every default lives in this package, once, as a typed field with a docstring.

`load_config(path, overrides)` reads YAML, applies `key=value` overrides and validates: unknown
keys and wrong types raise `ConfigError` naming the dotted key and the YAML line.
Sections follow the pipeline's stages: data, generate, judge, resample, paraphrase, select, train, evaluate,
report. The schema is split by stage into the modules below; import every name from `s3ft.config`:

- `base`: `Section`, `METHODS`, `refuse_owned`, `check_pass_through`, `PACKAGE_DIR`, `expand_package_dir`,
  `section_dict`
- `inputs`: `model` and `data` (`ModelConfig`, `DataConfig`, `SplitSource`, `FieldMap`, `LOAD_OWNED`)
- `generation`: `generate`, `judge`, `resample`, `paraphrase`, `select` (and `DecodeConfig`, `LLMJudgeConfig`)
- `train`: `TrainConfig`, `SFT_OWNED`, `LORA_OWNED`
- `evaluate`: `evaluate` (`GeneralSet`, `CurveConfig`, `ForgettingConfig`), `report`, `cache`
- `schema`: `Config`, the root
- `load`: `load_config`, `apply_override`
"""

from __future__ import annotations

from s3ft.config.base import (
    METHODS,
    PACKAGE_DIR,
    Method,
    Section,
    check_pass_through,
    expand_package_dir,
    refuse_owned,
    section_dict,
)
from s3ft.config.evaluate import (
    FORGETTING_TASKS,
    CacheConfig,
    CurveConfig,
    EvaluateConfig,
    ForgettingConfig,
    GeneralSet,
    ReportConfig,
)
from s3ft.config.generation import (
    DecodeConfig,
    GenerateConfig,
    JudgeConfig,
    LLMJudgeConfig,
    ParaphraseConfig,
    ResampleConfig,
    SelectConfig,
)
from s3ft.config.inputs import LOAD_OWNED, DataConfig, FieldMap, ModelConfig, SplitSource
from s3ft.config.load import apply_override, load_config
from s3ft.config.schema import Config
from s3ft.config.train import LORA_OWNED, SFT_OWNED, TrainConfig

__all__ = [
    "FORGETTING_TASKS", "LOAD_OWNED", "LORA_OWNED", "METHODS", "PACKAGE_DIR", "SFT_OWNED",
    "CacheConfig", "Config", "CurveConfig", "DataConfig", "DecodeConfig", "EvaluateConfig", "FieldMap",
    "ForgettingConfig", "GeneralSet", "GenerateConfig", "JudgeConfig", "LLMJudgeConfig", "Method",
    "ModelConfig", "ParaphraseConfig", "ReportConfig", "ResampleConfig", "Section", "SelectConfig", "SplitSource", "TrainConfig",
    "apply_override", "check_pass_through", "expand_package_dir", "load_config", "refuse_owned", "section_dict",
]
