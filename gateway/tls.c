/* placeholder: gateway/tls.c */ typedef int wsgate_placeholder_tls;
