"""Core modules the engine needs, built from their Maven Central jars when the core zip lacks them.

Maven Central's core distribution (`integ-test-zip`) carries every core module in some releases
(3.6.0) and only the transport modules in others (3.4.0). The modules are also published as plain
jars, so a missing one is laid out here the way the distribution build lays it out:
`modules/<name>/` with the module's jar, those of its runtime dependencies that the server's
`lib/` does not already hold (a second copy of a class fails OpenSearch's jar-hell check at
start), a generated `plugin-descriptor.properties`, and a `plugin-security.policy` where the
module needs permissions beyond the defaults.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from indexing.artifacts import Artifact
from sparse_mm.errors import EngineError

DESCRIPTOR = "plugin-descriptor.properties"
POLICY = "plugin-security.policy"
_Fetch = Callable[[list[Artifact]], list[Path]]

# Third-party jars of lang-painless by OpenSearch version, as its POM lists them (all with
# `*:*` exclusions, so there is nothing transitive to follow). Its other dependency, the
# painless SPI, depends only on the server jar, which lib/ holds.
_PAINLESS_THIRD_PARTY: dict[str, tuple[tuple[str, str, str], ...]] = {
    "3.4.0": (
        ("org.antlr", "antlr4-runtime", "4.13.1"),
        ("org.ow2.asm", "asm", "9.7"),
        ("org.ow2.asm", "asm-analysis", "9.7"),
        ("org.ow2.asm", "asm-commons", "9.7"),
        ("org.ow2.asm", "asm-tree", "9.7"),
        ("org.ow2.asm", "asm-util", "9.7"),
    ),
}

# SHA-256 of every module jar of a pinned version, taken when it was pinned (each file's SHA-1
# was first checked against the one Maven Central publishes).
# fmt: off
_JAR_SHA256 = {
    "lang-painless-3.4.0.jar": "2c6d2f22ef905744ce4681d8c06127f7b5f78da69da7a5d6dfa6cb16304e4813",
    "opensearch-scripting-painless-spi-3.4.0.jar": "f35b1a391cdaee81bf419fa844fa5c52d71ba04b37952e15c5403d1b81c1a080",  # noqa: E501
    "mapper-extras-client-3.4.0.jar": "6f7d4e1f1756baf25337824869a053e61874e17ce81b175c0c8b71580fdf75ff",  # noqa: E501
    "analysis-common-3.4.0.jar": "4c2207ac94d242f35a0d83576c79744b8bbbc6142ef253f9ca81163e1605a944",
    "lang-mustache-client-3.4.0.jar": "51a3aeacad24d7b29a967c8869de42bcfb71982f01e3808851573e978dec7c5d",  # noqa: E501
    "compiler-0.9.14.jar": "99a7e7855609135006f078e6de7ee69daad9c42f98e679d56f80653cb17526b9",
    "antlr4-runtime-4.13.1.jar": "54665d2838cc66458343468efc539e454fc95b46a8a04b13c6ac43fc9be63505",
    "asm-9.7.jar": "adf46d5e34940bdf148ecdd26a9ee8eea94496a72034ff7141066b3eea5c4e9d",
    "asm-analysis-9.7.jar": "7bc6bcbc21379948a0c8c467fb0f864206e5b818f6bc0b546872f5c9f941556f",
    "asm-commons-9.7.jar": "389bc247958e049fc9a0408d398c92c6d370c18035120395d4cba1d9d9304b7a",
    "asm-tree-9.7.jar": "62f4b3bc436045c1acb5c3ba2d8ec556ec3369093d7f5d06c747eb04b56d52b1",
    "asm-util-9.7.jar": "37a6414d36641973f1af104937c95d6d921b2ddb4d612c66c5a9f2b13fc14211",
}
# fmt: on

# Third-party jars of lang-mustache by OpenSearch version (its POM; `*:*` exclusions).
_MUSTACHE_THIRD_PARTY: dict[str, tuple[tuple[str, str, str], ...]] = {
    "3.4.0": (("com.github.spullara.mustache.java", "compiler", "0.9.14"),),
}

# mustache.java resolves template variables by reflection on the parameter objects.
_MUSTACHE_PERMISSIONS = ('permission java.lang.RuntimePermission "accessDeclaredMembers";',)

# Painless compiles scripts to classes at run time and loads allow-listed classes by name.
_PAINLESS_PERMISSIONS = (
    'permission java.lang.RuntimePermission "createClassLoader";',
    'permission java.lang.RuntimePermission "getClassLoader";',
)


@dataclass(frozen=True)
class ModuleRecipe:
    """How to build one module folder from published jars."""

    name: str
    description: str
    classname: str  # the jar's `Plugin` subclass (read from the published jar, not guessed)
    jars: tuple[Artifact, ...]
    extended_plugins: tuple[str, ...] = ()
    permissions: tuple[str, ...] = ()  # lines of the policy's grant block; none: no policy file


def module_recipes(version: str) -> dict[str, ModuleRecipe]:
    """The modules sparse-mm can build for OpenSearch `version`, by module name."""

    def jar(group: str, name: str, jar_version: str = version) -> Artifact:
        artifact = Artifact(group, name, jar_version)
        return replace(artifact, sha256=_JAR_SHA256.get(artifact.filename))

    recipes = [
        ModuleRecipe(
            name="mapper-extras",
            description="Extra field types, among them rank_features",
            classname="org.opensearch.index.mapper.MapperExtrasModulePlugin",
            jars=(jar("org.opensearch.plugin", "mapper-extras-client"),),
        ),
        ModuleRecipe(
            name="analysis-common",
            description="The common analyzers, tokenizers and token filters",
            classname="org.opensearch.analysis.common.CommonAnalysisModulePlugin",
            jars=(jar("org.opensearch.plugin", "analysis-common"),),
            # it registers a painless extension (META-INF/services in its jar)
            extended_plugins=("lang-painless",),
        ),
    ]
    if version in _PAINLESS_THIRD_PARTY:
        painless_jars = (
            jar("org.opensearch.plugin", "lang-painless"),
            jar("org.opensearch.plugin", "opensearch-scripting-painless-spi"),
            *(jar(*coordinate) for coordinate in _PAINLESS_THIRD_PARTY[version]),
        )
        recipes.append(
            ModuleRecipe(
                name="lang-painless",
                description="The painless scripting language",
                classname="org.opensearch.painless.PainlessModulePlugin",
                jars=painless_jars,
                permissions=_PAINLESS_PERMISSIONS,
            )
        )
    if version in _MUSTACHE_THIRD_PARTY:
        recipes.append(
            ModuleRecipe(
                name="lang-mustache",
                description="Mustache scripting, for search templates",
                classname="org.opensearch.script.mustache.MustacheModulePlugin",
                jars=(
                    jar("org.opensearch.plugin", "lang-mustache-client"),
                    *(jar(*coordinate) for coordinate in _MUSTACHE_THIRD_PARTY[version]),
                ),
                permissions=_MUSTACHE_PERMISSIONS,
            )
        )
    return {recipe.name: recipe for recipe in recipes}


def plugin_descriptor(recipe: ModuleRecipe, opensearch_version: str, java_version: str) -> str:
    """The text of `plugin-descriptor.properties` for a module of `opensearch_version`."""
    properties = {
        "description": recipe.description,
        "version": opensearch_version,
        "name": recipe.name,
        "classname": recipe.classname,
        "java.version": java_version,
        "opensearch.version": opensearch_version,
        "custom.foldername": "",
        "extended.plugins": ",".join(recipe.extended_plugins),
        "has.native.controller": "false",
    }
    lines = ["# generated by sparse-mm from the module's Maven Central jars"]
    lines += [f"{key}={value}" for key, value in properties.items()]
    return "\n".join(lines) + "\n"


def security_policy(recipe: ModuleRecipe) -> str | None:
    """The text of `plugin-security.policy`, or None when the module needs no extra grants."""
    if not recipe.permissions:
        return None
    body = "\n".join(f"  {line}" for line in recipe.permissions)
    return f"grant {{\n{body}\n}};\n"


def missing_modules(root: Path, required: Iterable[str]) -> list[str]:
    """The required modules that `root/modules` lacks; a folder without a descriptor or without
    a jar counts as missing (OpenSearch would refuse it, or start without its classes)."""

    def complete(folder: Path) -> bool:
        return (folder / DESCRIPTOR).is_file() and any(folder.glob("*.jar"))

    return [name for name in required if not complete(root / "modules" / name)]


def in_lib(artifact: Artifact, lib_jars: Iterable[str]) -> bool:
    """Whether the server's lib/ already has `artifact`, in any version."""
    pattern = re.compile(rf"{re.escape(artifact.name)}-\d[^/]*\.jar")
    return any(pattern.fullmatch(name) for name in lib_jars)


def install_modules(
    root: Path,
    names: Iterable[str],
    version: str,
    java_version: str,
    fetch: _Fetch,
) -> list[str]:
    """Build `root/modules/<name>/` for each of `names` from published jars; return the names.

    `fetch` resolves artifacts to local files (the node passes `indexing.artifacts.resolve`).
    Raises EngineError naming the modules that have no recipe for `version`.
    """
    names = list(names)
    recipes = module_recipes(version)
    unknown = [name for name in names if name not in recipes]
    if unknown:
        raise EngineError(
            f"the OpenSearch {version} core distribution lacks modules {unknown}, and sparse-mm "
            "has no recipe to build them for that version"
        )
    lib_jars = [path.name for path in (root / "lib").glob("*.jar")]
    wanted = {name: [a for a in recipes[name].jars if not in_lib(a, lib_jars)] for name in names}
    # one fetch for every module: with Maven, each resolution run costs a JVM start
    everything = [artifact for jars in wanted.values() for artifact in jars]
    files = {path.name: path for path in fetch(everything)}
    for name in names:
        recipe = recipes[name]
        folder = root / "modules" / name
        folder.mkdir(parents=True, exist_ok=True)
        for artifact in wanted[name]:
            shutil.copyfile(files[artifact.filename], folder / artifact.filename)
        (folder / DESCRIPTOR).write_text(plugin_descriptor(recipe, version, java_version))
        policy = security_policy(recipe)
        if policy is not None:
            (folder / POLICY).write_text(policy)
    return names
