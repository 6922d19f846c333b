/* placeholder: auth/token.c */ typedef int wsgate_placeholder_token;
