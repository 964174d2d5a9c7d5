# syntax=docker/dockerfile:1
# bitops image: usable exactly like BitOps' image —
#   docker run -e BITOPS_ENVIRONMENT=backend-test -v "$(pwd)":/opt/bitops_deployment IMAGE
# Pinned tool versions; bump them here and nowhere else.
ARG RUST_VERSION=1.85
ARG DEBIAN=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN} AS build
WORKDIR /src
# Dependencies first, so source edits do not refetch crates.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches tests/integration \
    && echo 'fn main() {}' > src/main.rs && echo '' > src/lib.rs \
    && echo 'fn main() {}' > benches/plan.rs && echo '' > tests/integration/main.rs \
    && cargo fetch --locked
COPY src ./src
RUN cargo build --release --locked --bin bitops

FROM debian:${DEBIAN}-slim AS runtime
ARG TERRAFORM_VERSION=1.11.4
ARG HELM_VERSION=3.16.4
ARG KUBECTL_VERSION=1.31.4
ARG ANSIBLE_CORE_VERSION=2.19.14
ARG AWSCLI_VERSION=1.45.11
ARG TARGETARCH=amd64
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Debian packages come from the pinned base image's release; exact apt versions would break the
# build at every Debian point release, while the tools that matter are pinned above.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        bash ca-certificates curl git jq openssh-client python3 python3-venv rsync tini unzip \
    && rm -rf /var/lib/apt/lists/*
RUN curl -fsSL "https://releases.hashicorp.com/terraform/${TERRAFORM_VERSION}/terraform_${TERRAFORM_VERSION}_linux_${TARGETARCH}.zip" -o /tmp/tf.zip \
    && unzip -q /tmp/tf.zip -d /usr/local/bin terraform && rm /tmp/tf.zip \
    && curl -fsSL "https://get.helm.sh/helm-v${HELM_VERSION}-linux-${TARGETARCH}.tar.gz" | tar -xz -C /tmp \
    && mv "/tmp/linux-${TARGETARCH}/helm" /usr/local/bin/helm && rm -rf "/tmp/linux-${TARGETARCH}" \
    && curl -fsSL "https://dl.k8s.io/release/v${KUBECTL_VERSION}/bin/linux/${TARGETARCH}/kubectl" -o /usr/local/bin/kubectl \
    && chmod 0755 /usr/local/bin/kubectl
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir "ansible-core==${ANSIBLE_CORE_VERSION}" "awscli==${AWSCLI_VERSION}"
ENV PATH="/opt/venv/bin:${PATH}"
COPY --from=build /src/target/release/bitops /usr/local/bin/bitops
# BitOps' paths: the repo is mounted here; state goes to .bitops inside it unless overridden.
WORKDIR /opt/bitops_deployment
# tini reaps zombies and forwards signals, so bitops' Ctrl-C handling works as PID 2.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/bitops"]
CMD ["deploy"]
