/* placeholder: gateway/http1_parse.c */ typedef int wsgate_placeholder_http1_parse;
