/* placeholder: auth/auth.c */ typedef int wsgate_placeholder_auth;
