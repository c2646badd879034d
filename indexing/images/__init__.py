"""Local container images of the managed engines (`sparse-mm image build`), for sites that
cannot pull the official images: the same pinned artifacts and Java runtime rules as the
managed nodes, on a base image made from the system's own packages when none is given.

    spec.py     what differs by engine: paths, user, variables, Java runtime, config
    recipe.py   the build context's text (Dockerfile, entry point, config) and its inputs hash
    runtime.py  the Java runtime copied into an image (jlink'd, or the whole JDK)
    base.py     the base image: the apt source in use, debootstrap, docker import
    docker.py   the docker CLI calls (daemon, image labels, build)
    build.py    one image: reuse by inputs hash, else assemble the context and build
    cli.py      `sparse-mm image build`
"""
