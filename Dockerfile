# syntax=docker/dockerfile:1
# One image for every role (registry, hub, node, and the compose set-up): `ephyto` with
# the PostgreSQL driver. Build from the repository root:
#   docker build -t ephyto-exchange .
# The build stage makes wheels of the project and of every dependency; the final stage
# installs only those wheels: no compiler, no pip cache, no source tree.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE NOTICE ./
COPY node ./node
COPY registry ./registry
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[postgres]"

FROM python:3.11-slim
# A fixed uid, so that files in volumes and secrets mounted from the host can be given to it.
RUN groupadd --system --gid 10001 ephyto \
 && useradd --system --uid 10001 --gid ephyto --home-dir /var/lib/ephyto \
      --shell /usr/sbin/nologin ephyto \
 && install -d -o ephyto -g ephyto -m 0750 /var/lib/ephyto \
 # The mount points of compose/compose.yaml's volumes: a new named volume takes the
 # ownership of the directory it is mounted on, so they must be the user's already.
 && install -d -o ephyto -g ephyto -m 0700 \
      /var/lib/ephyto/registry /var/lib/ephyto/mirror /var/lib/ephyto/hub-a \
      /var/lib/ephyto/hub-b /var/lib/ephyto/node-nl /var/lib/ephyto/node-ke \
      /var/lib/ephyto/node-us
# The wheels are mounted from the build stage for this one step, so no layer keeps them.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels "ephyto-exchange[postgres]"
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER ephyto
WORKDIR /var/lib/ephyto
# No VOLUME here: compose.yaml names a volume for each service's state, and a VOLUME
# would add an anonymous one to every container.
ENTRYPOINT ["ephyto"]
CMD ["--help"]
