/* placeholder: gateway/conn.c */ typedef int wsgate_placeholder_conn;
