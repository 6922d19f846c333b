typedef int wsgate_placeholder_echo;
