"""Two throwaway Cog predictors returning the same two files as different output types.

Used by tests/test_server.py to measure which type Cog's server uploads file by file when it runs with
--upload-url (as on Replicate); the package ships the one that does.
"""

import tempfile

from cog import BaseModel, BaseRunner, Path


def _files() -> tuple[Path, Path]:
    directory = Path(tempfile.mkdtemp())
    (directory / "embedding.bin").write_bytes(bytes(1024))
    (directory / "manifest.json").write_text('{"format": "sam2enc-bundle"}')
    return directory / "embedding.bin", directory / "manifest.json"


class Files(BaseModel):
    embedding: Path
    manifest: Path


class AsModel(BaseRunner):
    def run(self, text: str) -> Files:
        embedding, manifest = _files()
        return Files(embedding=embedding, manifest=manifest)


class AsList(BaseRunner):
    def run(self, text: str) -> list[Path]:
        return list(_files())
