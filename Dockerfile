# R1 Lab, CPU image: web, worker-cpu and flower run from it.
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml constraints.txt ./
# torch first, from the CPU index, pinned: the image never pulls a CUDA build
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY . .
RUN pip install --no-cache-dir -c constraints.txt -e . flower
ENV LAB_DATA_DIR=/data OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
EXPOSE 8000
CMD ["gunicorn", "lab.wsgi:application", "--bind", "0.0.0.0:8000", "--worker-class", "gthread", "--threads", "8"]
