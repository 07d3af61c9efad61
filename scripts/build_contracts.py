#!/usr/bin/env python3
"""Compile the contracts into the committed artifacts in contracts/build/.

    scripts/build_contracts.py            rewrite contracts/build/<Name>.json
    scripts/build_contracts.py --check    recompile into a temporary directory and fail (exit 1)
                                          unless the result equals the committed files byte for byte

The compiler is solc-js 0.8.28 from node_modules (through the scripts/solc shim), fed the
same standard-JSON input every time: the settings below, sources read from the repository
and OpenZeppelin from node_modules. The service loads the artifacts and never needs a
compiler. ape-config.yaml uses the same compiler version, optimizer and EVM version, so
`ape test` exercises the same code (only the metadata hash at the end of the bytecode
differs, because Ape names the OpenZeppelin sources differently).

Artifact format ``tally-contract-artifact-v1``: contractName, sourceName, compiler
{name, version, settings}, abi, bytecode, deployedBytecode (0x-hex), metadata (the
compiler's metadata JSON, as needed to verify the source on a block explorer), devdoc,
userdoc.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SOLC_SHIM = REPO_ROOT / "scripts" / "solc"
BUILD_DIR = REPO_ROOT / "contracts" / "build"
ARTIFACT_FORMAT = "tally-contract-artifact-v1"
SOLC_VERSION = "0.8.28"

# contract name -> source unit name (a path relative to the repository root)
CONTRACTS = {
    "EvidenceAnchor": "contracts/EvidenceAnchor.sol",
}

SETTINGS: dict[str, object] = {
    "evmVersion": "cancun",
    "optimizer": {"enabled": True, "runs": 200},
    "remappings": ["@openzeppelin/contracts/=node_modules/@openzeppelin/contracts/"],
    "metadata": {"bytecodeHash": "ipfs", "appendCBOR": True},
    "outputSelection": {
        "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata", "devdoc", "userdoc"]}
    },
}


def solc_version() -> str:
    output = subprocess.run([str(SOLC_SHIM), "--version"], capture_output=True, text=True, check=True).stdout
    version = output.strip().splitlines()[-1].removeprefix("Version: ")
    if not version.startswith(SOLC_VERSION + "+"):
        raise SystemExit(f"expected solc {SOLC_VERSION} in node_modules/solc, found {version}; run `npm ci`")
    return version


def standard_json_input() -> dict[str, object]:
    sources = {source: {"content": (REPO_ROOT / source).read_text(encoding="utf-8")} for source in CONTRACTS.values()}
    return {"language": "Solidity", "sources": dict(sorted(sources.items())), "settings": SETTINGS}


def compile_contracts() -> dict[str, dict[str, object]]:
    """Returns ``{contract name: artifact}``; exits with the compiler's messages on errors."""
    version = solc_version()
    completed = subprocess.run(
        [str(SOLC_SHIM), "--standard-json", "--base-path", str(REPO_ROOT)],
        input=json.dumps(standard_json_input()),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    if completed.returncode != 0:
        raise SystemExit(f"solc failed ({completed.returncode}): {completed.stderr}")
    output = json.loads(completed.stdout)
    problems = output.get("errors", [])
    for problem in problems:
        print(problem.get("formattedMessage", problem.get("message")), file=sys.stderr)
    if any(problem.get("severity") == "error" for problem in problems):
        raise SystemExit("compilation failed")

    settings = {key: value for key, value in SETTINGS.items() if key != "outputSelection"}
    artifacts = {}
    for name, source in CONTRACTS.items():
        compiled = output["contracts"][source][name]
        artifacts[name] = {
            "format": ARTIFACT_FORMAT,
            "contractName": name,
            "sourceName": source,
            "compiler": {"name": "solc-js", "version": version, "settings": settings},
            "abi": compiled["abi"],
            "bytecode": "0x" + compiled["evm"]["bytecode"]["object"],
            "deployedBytecode": "0x" + compiled["evm"]["deployedBytecode"]["object"],
            "metadata": compiled["metadata"],
            "devdoc": compiled["devdoc"],
            "userdoc": compiled["userdoc"],
        }
    return artifacts


def write_artifacts(artifacts: dict[str, dict[str, object]], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, artifact in artifacts.items():
        path = directory / f"{name}.json"
        path.write_text(json.dumps(artifact, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def check(artifacts: dict[str, dict[str, object]]) -> int:
    with tempfile.TemporaryDirectory() as temporary:
        fresh = write_artifacts(artifacts, Path(temporary))
        stale = []
        for path in fresh:
            committed = BUILD_DIR / path.name
            if not committed.is_file() or committed.read_bytes() != path.read_bytes():
                stale.append(committed.relative_to(REPO_ROOT))
    if stale:
        listing = ", ".join(str(path) for path in stale)
        print(f"out of date: {listing}; run scripts/build_contracts.py and commit the result", file=sys.stderr)
        return 1
    print(f"contracts/build is up to date ({len(artifacts)} artifact(s))")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail unless the committed artifacts are current")
    arguments = parser.parse_args(argv)
    artifacts = compile_contracts()
    if arguments.check:
        return check(artifacts)
    for path in write_artifacts(artifacts, BUILD_DIR):
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
