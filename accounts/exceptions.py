from config.exceptions import ServiceError, ValidationFailed


class InvalidHandle(ValidationFailed):
    code = "invalid_handle"
    default_detail = "That handle cannot be used."


class HandleTaken(ValidationFailed):
    code = "handle_taken"
    default_detail = "That handle is taken. Try another."


class AgeOutOfRange(ValidationFailed):
    code = "age_out_of_range"


class InvalidPassword(ValidationFailed):
    code = "invalid_password"


class AuthenticationFailed(ServiceError):
    code = "authentication_failed"
    status = 401
    default_detail = "Handle or password is wrong."


class LoginLocked(ServiceError):
    code = "login_locked"
    status = 429
    default_detail = "Too many failed attempts. Wait a few minutes and try again."
