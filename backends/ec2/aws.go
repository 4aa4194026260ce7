package ec2

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	ec2svc "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// retryMaxAttempts is how often the SDK tries a request that failed for a reason worth a
// retry (throttling, a 5xx): a job's driver and workers poll S3 for hours, and one failed
// listing must not end the job.
const retryMaxAttempts = 10

// clients are the AWS clients of one region.
type clients struct {
	region string
	ec2    *ec2svc.Client
	s3     *s3.Client
	// endpoint is the endpoint S3 is reached at when not AWS's own ("" for AWS): from the
	// env block, else the SDK's AWS_ENDPOINT_URL(_S3) variables or shared config.
	endpoint string
}

// connect loads the SDK's configuration (credentials and region from its default chain;
// region and endpoint from the env block first) and makes the clients. It does not call AWS.
func connect(ctx context.Context, region, endpoint string) (*clients, error) {
	opts := []func(*config.LoadOptions) error{config.WithRetryMaxAttempts(retryMaxAttempts)}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if endpoint != "" {
		opts = append(opts, config.WithBaseEndpoint(endpoint))
	}
	if os.Getenv("AWS_RESPONSE_CHECKSUM_VALIDATION") == "" {
		// Validate checksums of responses when the operation requires it only: S3-compatible
		// servers (moto among them) often send none, and the SDK then logs a warning per GET.
		opts = append(opts, config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("no AWS region: set `region` in the env block, or AWS_REGION, or a region in your AWS profile")
	}
	c := &clients{region: cfg.Region}
	c.ec2 = ec2svc.NewFromConfig(cfg)
	c.s3 = s3.NewFromConfig(cfg, func(o *s3.Options) {
		// o.BaseEndpoint is already resolved from the env block, AWS_ENDPOINT_URL(_S3) and the
		// shared config: a custom endpoint has no bucket subdomains, so address it by path.
		if o.BaseEndpoint != nil {
			o.UsePathStyle = true
			c.endpoint = *o.BaseEndpoint
		}
	})
	return c, nil
}

// checkCredentials fails early, with a hint, when the SDK's chain finds no credentials.
func checkCredentials(ctx context.Context, c *clients) error {
	msg := "no AWS credentials found"
	provider := c.ec2.Options().Credentials
	if provider == nil {
		return fmt.Errorf("%s: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run `aws configure`", msg)
	}
	creds, err := provider.Retrieve(ctx)
	if err == nil && creds.HasKeys() {
		// Keys AWS never issued, or a wrong secret, fail every call; the cheapest signed one
		// tells before any other check gives a more puzzling error (S3's HEAD has no body,
		// only 403). Any other failure (no permission to describe regions) passes here.
		_, err := c.ec2.DescribeRegions(ctx, &ec2svc.DescribeRegionsInput{})
		if isCredentialsError(err) {
			return fmt.Errorf("AWS refused the credentials (%s: %s): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the profile's keys, or AWS_SESSION_TOKEN when the keys are temporary)",
				apiCode(err), apiMessage(err))
		}
		return nil
	}
	if err != nil {
		msg += " (" + firstLine(err.Error()) + ")"
	}
	return fmt.Errorf("%s: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run `aws configure` (or `aws sso login`)", msg)
}

// apiCode returns the error code of an AWS API error ("" if err is not one).
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// httpStatus returns the HTTP status of a failed request (0 if unknown).
func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.StatusCode
	}
	return 0
}

// responseHeader returns a header of a failed request's response.
func responseHeader(err error, name string) string {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.Header.Get(name)
	}
	return ""
}

// apiMessage is an API error's message, else the error's text.
func apiMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if m := ae.ErrorMessage(); m != "" {
			return ae.ErrorCode() + ": " + m
		}
		return ae.ErrorCode()
	}
	return err.Error()
}

// isCredentialsError tells whether AWS refused the request's credentials themselves.
func isCredentialsError(err error) bool {
	switch apiCode(err) {
	case "AuthFailure", "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
		"InvalidAccessKeyId", "ExpiredToken", "ExpiredTokenException", "RequestExpired", "InvalidToken":
		return true
	}
	return false
}

// isDenied tells whether AWS refused the operation to these credentials (IAM).
func isDenied(err error) bool {
	code := apiCode(err)
	return code == "UnauthorizedOperation" || code == "AccessDenied" || code == "AccessDeniedException" ||
		httpStatus(err) == http.StatusForbidden
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
