/* placeholder: auth/static.c */ typedef int wsgate_placeholder_static;
