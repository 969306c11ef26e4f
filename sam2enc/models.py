"""The SAM2.1 variants this package knows: config, official checkpoint and its sha256, as data."""

from __future__ import annotations

from dataclasses import dataclass

_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824"


@dataclass(frozen=True)
class ModelSpec:
    name: str  # short name used on the command line: tiny, small, base_plus, large
    config: str  # hydra config inside the sam2 package
    checkpoint_url: str
    sha256: str
    params_m: float  # parameter count in millions, for the README and logs

    @property
    def full_name(self) -> str:
        return f"sam2.1_hiera_{self.name}"

    @property
    def checkpoint_filename(self) -> str:
        return f"sam2.1_hiera_{self.name}.pt"


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "tiny",
            "configs/sam2.1/sam2.1_hiera_t.yaml",
            f"{_BASE_URL}/sam2.1_hiera_tiny.pt",
            "7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69",
            38.9,
        ),
        ModelSpec(
            "small",
            "configs/sam2.1/sam2.1_hiera_s.yaml",
            f"{_BASE_URL}/sam2.1_hiera_small.pt",
            "6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38",
            46.0,
        ),
        ModelSpec(
            "base_plus",
            "configs/sam2.1/sam2.1_hiera_b+.yaml",
            f"{_BASE_URL}/sam2.1_hiera_base_plus.pt",
            "a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5",
            80.8,
        ),
        ModelSpec(
            "large",
            "configs/sam2.1/sam2.1_hiera_l.yaml",
            f"{_BASE_URL}/sam2.1_hiera_large.pt",
            "2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318",
            224.4,
        ),
    )
}


def get_model(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None
