"""FastChat: the controller's client (``controller``), workers spoken to directly the OpenAI way
(``worker_client``, ``openai_mapping``, ``conversation``, ``errors``) and the managed controller and API server
(``managed``)."""
