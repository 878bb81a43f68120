"""Regenerate the checked-in stubs from ``mosaicrec.proto``.

``python -m mosaicrec.serving.grpc.generate`` rewrites ``mosaicrec_pb2.py``,
``mosaicrec_pb2.pyi`` and ``mosaicrec_pb2_grpc.py`` beside the proto (``--out DIR`` writes them
elsewhere; a test regenerates into a tmp dir and compares bytes). protoc writes imports from
the proto's path, so it runs on a temporary tree where the proto sits at
``mosaicrec/serving/grpc/mosaicrec.proto``: the stubs import as
``mosaicrec.serving.grpc.mosaicrec_pb2``. Needs ``grpcio-tools`` (the ``dev`` extra).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from importlib import resources
from pathlib import Path

from mosaicrec.errors import MissingDependencyError, MosaicError

__all__ = ["PROTO", "STUBS", "generate"]

HERE = Path(__file__).resolve().parent
PROTO = HERE / "mosaicrec.proto"
PACKAGE_PATH = Path("mosaicrec", "serving", "grpc")
STUBS = ("mosaicrec_pb2.py", "mosaicrec_pb2.pyi", "mosaicrec_pb2_grpc.py")


def generate(out_dir: Path = HERE, proto: Path = PROTO) -> list[Path]:
    """Run protoc (grpcio-tools) on ``proto``; returns the stub files written to ``out_dir``."""
    try:
        from grpc_tools import protoc
    except ImportError:
        raise MissingDependencyError("regenerating the gRPC stubs needs grpcio-tools: "
                                     "pip install 'mosaicrec[dev]'") from None
    include = resources.files("grpc_tools") / "_proto"  # google/protobuf/*.proto
    with tempfile.TemporaryDirectory() as tmp:
        src, gen = Path(tmp, "src"), Path(tmp, "gen")
        (src / PACKAGE_PATH).mkdir(parents=True)
        gen.mkdir()
        shutil.copyfile(proto, src / PACKAGE_PATH / "mosaicrec.proto")
        rc = protoc.main(["grpc_tools.protoc", f"-I{src}", f"-I{include}",
                          f"--python_out={gen}", f"--pyi_out={gen}",
                          f"--grpc_python_out={gen}",
                          str(PACKAGE_PATH / "mosaicrec.proto")])
        if rc != 0:
            raise MosaicError(f"protoc failed on {proto} (exit status {rc}); see its output")
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for name in STUBS:
            target = out_dir / name
            shutil.copyfile(gen / PACKAGE_PATH / name, target)
            written.append(target)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="where to write the stubs")
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path)


if __name__ == "__main__":
    main()
