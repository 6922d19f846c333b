/* placeholder: gateway/worker.c */ typedef int wsgate_placeholder_worker;
