/* placeholder: gateway/log.c */ typedef int wsgate_placeholder_log;
