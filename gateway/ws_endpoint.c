/* placeholder: gateway/ws_endpoint.c */ typedef int wsgate_placeholder_ws_endpoint;
