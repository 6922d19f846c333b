/* placeholder: gateway/ws_handshake.c */ typedef int wsgate_placeholder_ws_handshake;
