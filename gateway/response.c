/* placeholder: gateway/response.c */ typedef int wsgate_placeholder_response;
