# The training image: the engine image plus aigc-admin's training program (src/aigc_admin/engine/finetune.py).
#
#   docker build -f docker/training.Dockerfile -t aigc-admin/training:0.2.36 src/aigc_admin/engine
#
# Built FROM the engine image rather than from the requirements again: the same torch/transformers/peft (the
# program is tested against exactly those), and every layer but the last is shared, so it costs ~30 kB on a
# host that has the engine image. The program is standalone (it never imports aigc_admin): one file suffices.
ARG ENGINE_IMAGE=aigc-admin/fastchat:0.2.36
FROM ${ENGINE_IMAGE}
COPY finetune.py /opt/aigc/finetune.py
# Arguments go to the program: `docker run … aigc-admin/training:0.2.36 --base-model-path … --data-path …`.
# Its JSON lines come on stdout, everything else on stderr (see the program's docstring).
# The platform's runtime passes the whole command (python3 /opt/aigc/finetune.py --base-model-path …, with
# finetune.program=/opt/aigc/finetune.py): the entrypoint only reaps; the default command shows the program's options.
ENTRYPOINT ["tini", "--"]
CMD ["python3", "/opt/aigc/finetune.py", "--help"]
