/* placeholder: gateway/ws_frame.c */ typedef int wsgate_placeholder_ws_frame;
